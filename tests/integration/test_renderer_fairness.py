"""Fair rendering against the real RabbitMQ and real renders: one user's burst of cache misses
does not starve another user's miss, its own cache hits stay immediate, and misses still
waiting for their turn go back to the queue at once on shutdown.

Ordering is made deterministic with the hold hook (``support.holds``): user A's misses are
rooms whose name carries the marker, so their renders stay in progress until released; user
B's rooms do not, so B's render runs through.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aio_pika.abc import AbstractChannel, AbstractExchange
from prometheus_client import REGISTRY
from renderer_fixtures import (
    AMQP_URL,
    EventCollector,
    Received,
    declared_channel,
    make_job,
    make_payload,
    publish_job,
)
from snapshot_renderer.service import RendererService
from snapshot_renderer.settings import Settings
from snapshot_shared.messages import RenderJob
from snapshot_shared.topology import Topology
from support.holds import MARKER, Holds, hold_settings, passing
from support.waiting import next_message, until


@pytest.fixture
async def channel(topology: Topology) -> AsyncIterator[AbstractChannel]:
    async with declared_channel(topology) as chan:
        yield chan


@pytest.fixture
def holds() -> Any:
    found = Holds()
    try:
        yield found
    finally:
        found.close()


def renderer(tmp_path: Path, topology: Topology, holds: Holds, workers: int) -> Settings:
    return Settings(
        amqp_url=AMQP_URL,
        queue_prefix=topology.prefix,
        store_dir=tmp_path / "store",
        concurrency=workers,  # user concurrency: the default, max(1, workers // 2) = 1
        metrics_port=0,
        renderer_id="fair-renderer",
        shutdown_grace_seconds=30,
        **hold_settings(holds),
    )


def miss(user: str, seed: int, held: bool) -> RenderJob:
    name = f"Room {seed} {MARKER}" if held else f"Room {seed}"
    return make_job(make_payload(n_messages=3, seed=seed, name=name), requested_by=user)


def outcome(received: list[Received]) -> tuple[str, str | None]:
    last = received[-1].event
    return last.event, last.cache


def started_at(received: list[Received]) -> Any:
    return next(r.event.at for r in received if r.event.phase == "started")


async def test_another_users_miss_and_the_flooding_users_hits_do_not_wait_for_the_flood(
    tmp_path: Path,
    topology: Topology,
    exchange: AbstractExchange,
    events: EventCollector,
    holds: Holds,
) -> None:
    """Two workers: A's misses use at most one of them, so B's miss renders while A's are
    held, and A's cache hit is answered although A's misses fill the renderer."""
    hit = miss("alice", seed=900, held=False)
    flood = [miss("alice", seed=901 + n, held=True) for n in range(6)]
    other = miss("bob", seed=950, held=False)
    again = make_job(hit.payload, requested_by="alice")  # the same content: a cache hit
    async with RendererService(renderer(tmp_path, topology, holds, workers=2)):
        await publish_job(exchange, hit, topology.status_queue)
        assert outcome(await events.until_terminal(hit.task_id)) == ("completed", "miss")
        for job in flood:
            await publish_job(exchange, job, topology.status_queue)
        first = await holds.next()  # one of A's renders is in progress and stays there
        await publish_job(exchange, again, topology.status_queue)
        await publish_job(exchange, other, topology.status_queue)

        assert outcome(await events.until_terminal(again.task_id, 60)) == ("completed", "memory")
        assert outcome(await events.until_terminal(other.task_id, 60)) == ("completed", "miss")
        assert holds.count == 1  # B rendered and A's hit came back while A's backlog waited
        async with passing(holds):
            first.release()
            ends = [outcome(await events.until_terminal(job.task_id)) for job in flood]
    assert ends == [("completed", "miss")] * len(flood)
    assert holds.count == len(flood)


async def test_one_worker_serves_another_users_miss_next_not_after_the_backlog(
    tmp_path: Path,
    topology: Topology,
    exchange: AbstractExchange,
    events: EventCollector,
    holds: Holds,
) -> None:
    """One worker and the renderer's fair queue in front of it: when A's render in progress
    ends, B's miss (published after all of A's) is the next render to start."""
    flood = [miss("alice", seed=801 + n, held=True) for n in range(3)]
    other = miss("bob", seed=850, held=False)
    async with RendererService(renderer(tmp_path, topology, holds, workers=1)):
        for job in flood:
            await publish_job(exchange, job, topology.status_queue)
        first = await holds.next()
        await publish_job(exchange, other, topology.status_queue)
        # Which of A's jobs took the one worker first is not fixed: their handling overlaps.
        leader = await events.first_in_phase([job.task_id for job in flood], "rendering")

        async def delivered() -> bool:  # B's job reached the renderer and waits for its turn
            metric = await _metric("snapshot_renderer_jobs_waiting")
            return metric == len(flood)  # A's two left and B's one

        await until(delivered, 60, "B's job to wait in the renderer's fair queue")
        async with passing(holds):
            first.release()
            b = await events.until_terminal(other.task_id)
            a = {job.task_id: await events.until_terminal(job.task_id) for job in flood}
    assert outcome(b) == ("completed", "miss")
    assert [outcome(r) for r in a.values()] == [("completed", "miss")] * len(flood)
    later = sorted(started_at(r) for task_id, r in a.items() if task_id != leader)
    assert started_at(a[leader]) < started_at(b) < later[0], (started_at(b), later)


async def test_misses_waiting_for_their_turn_go_back_to_the_queue_at_once_on_shutdown(
    tmp_path: Path,
    topology: Topology,
    channel: AbstractChannel,
    exchange: AbstractExchange,
    events: EventCollector,
    holds: Holds,
) -> None:
    flood = [miss("alice", seed=701 + n, held=True) for n in range(3)]
    service = RendererService(renderer(tmp_path, topology, holds, workers=1))
    await service.start()
    try:
        for job in flood:
            await publish_job(exchange, job, topology.status_queue)
        first = await holds.next()
        await until(lambda: _waiting_is(2), 60, "two misses waiting for their turn")
        stopping = asyncio.ensure_future(service.stop())
        jobs = await channel.get_queue(topology.jobs_queue)
        back = [await next_message(jobs, timeout=20) for _ in range(2)]  # ready again, at once
        assert not stopping.done()  # the render in progress is still allowed to finish
        first.release()
        await stopping
        for message in back:
            await message.nack(requeue=True)
    finally:
        await service.stop()
    rendered = {str(job.task_id) for job in flood} - {m.correlation_id for m in back}
    assert len(rendered) == 1, rendered  # the two handed back were never rendered here
    received = await events.until_terminal(uuid.UUID(rendered.pop()), 10)
    assert outcome(received) == ("completed", "miss")
    assert holds.count == 1


async def _waiting_is(n: int) -> bool:
    return await _metric("snapshot_renderer_jobs_waiting") == n


async def _metric(name: str) -> float:
    value = REGISTRY.get_sample_value(name)
    return value if value is not None else 0.0
