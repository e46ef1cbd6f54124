"""Fixtures of the renderer tests (helpers are in ``renderer_fixtures``): a topology of the
test's own, the jobs exchange and the status events on the module's ``channel``.

A renderer test module defines ``channel`` as ``renderer_fixtures.declared_channel(topology)``
(the suite-wide ``channel`` is a plain guest channel that declares nothing)."""

from __future__ import annotations

import uuid

import pytest
from aio_pika.abc import AbstractChannel, AbstractExchange
from renderer_fixtures import EventCollector, QueueReader
from snapshot_shared.topology import Topology


@pytest.fixture
def topology() -> Topology:
    return Topology(prefix=f"t{uuid.uuid4().hex[:8]}.")


@pytest.fixture
async def exchange(channel: AbstractChannel, topology: Topology) -> AbstractExchange:
    return await channel.get_exchange(topology.exchange)


@pytest.fixture
async def events(channel: AbstractChannel, topology: Topology) -> EventCollector:
    """Every status event of the test's topology, read from its status queue."""
    status = await channel.get_queue(topology.status_queue)
    return EventCollector(await QueueReader(status).start())
