"""Renderer retries against the real RabbitMQ: a job whose attempts keep failing for a
transient reason is tried again after growing delays (through the delay queues), then fails
as ``delivery_limit_exceeded`` naming its last error; it is never spun through its delivery
limit in a burst."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aio_pika.abc import AbstractChannel, AbstractExchange
from renderer_fixtures import (
    AMQP_URL,
    EventCollector,
    QueueReader,
    declared_channel,
    make_job,
    make_payload,
    publish_job,
)
from snapshot_renderer.service import RendererService
from snapshot_renderer.settings import Settings
from snapshot_shared.topology import Topology
from support.waiting import next_message, until

CRASH = "CRASH-ME-PLEASE"
LIMIT = 3


@pytest.fixture
def topology() -> Topology:
    return Topology(prefix=f"t{uuid.uuid4().hex[:8]}.", delivery_limit=LIMIT)


@pytest.fixture
async def channel(topology: Topology) -> AsyncIterator[AbstractChannel]:
    async with declared_channel(topology) as chan:
        yield chan


@pytest.fixture
def settings(tmp_path: Path, topology: Topology) -> Settings:
    return Settings(
        amqp_url=AMQP_URL,
        queue_prefix=topology.prefix,
        delivery_limit=LIMIT,
        store_dir=tmp_path / "store",
        concurrency=1,
        metrics_port=0,
        renderer_id="retry-renderer",
        shutdown_grace_seconds=30,
        crash_test_marker=CRASH,
    )


async def test_a_transient_failure_is_retried_after_growing_delays_then_fails(
    settings: Settings, channel: AbstractChannel, topology: Topology
) -> None:
    exchange: AbstractExchange = await channel.get_exchange(topology.exchange)
    events = EventCollector(
        await QueueReader(await channel.get_queue(topology.status_queue)).start()
    )
    job = make_job(make_payload(n_messages=2, seed=41, name=f"Room {CRASH}"))
    async with RendererService(settings):
        await publish_job(exchange, job, topology.status_queue)
        received = await events.until_terminal(job.task_id, timeout=90)

    last = received[-1].event
    assert last.event == "failed" and last.error is not None, last
    assert last.error.code == "delivery_limit_exceeded", last.error
    assert last.attempt == LIMIT and f"failed {LIMIT} attempts" in last.error.message
    assert "(worker_crashed)" in last.error.message, last.error
    starts = [r.event.at for r in received if r.event.phase == "started"]
    assert len(starts) == LIMIT, received
    gaps = [(b - a).total_seconds() for a, b in zip(starts, starts[1:], strict=False)]
    delays = topology.retry_delays_seconds
    assert gaps[0] >= delays[0] and gaps[1] >= delays[1], gaps  # waited, not spun
    dead = await channel.declare_queue(topology.dead_queue, passive=True)
    assert dead.declaration_result.message_count == 0


async def test_a_delivery_whose_outcome_cannot_be_settled_is_handed_back_not_held(
    settings: Settings, channel: AbstractChannel, topology: Topology
) -> None:
    """The renderer's publish channel is closed under it: reporting the failed job raises an
    error the settle path does not expect. The delivery must go back to the queue (and, as
    every attempt ends the same way, reach render.jobs.dead through the delivery limit)
    instead of staying unacked on the consume channel for good."""
    exchange: AbstractExchange = await channel.get_exchange(topology.exchange)
    dead = await channel.get_queue(topology.dead_queue)
    job = make_job(make_payload(n_messages=1, seed=42), content_hash="0" * 64)  # a bad job
    impatient = settings.model_copy(update={"status_channel_wait_seconds": 0.5})
    async with RendererService(impatient) as service:
        assert service.handler is not None
        await service.handler._publisher._channel.close()  # the fault: no event can go out
        await publish_job(exchange, job, topology.status_queue)
        message = await next_message(dead, timeout=60)
    reasons = [d.get("reason") for d in (message.headers or {}).get("x-death", [])]
    assert reasons[:1] == ["delivery_limit"], message.headers
    await message.ack()


async def test_a_job_delivered_before_the_status_channel_reopens_waits_for_it(
    settings: Settings, channel: AbstractChannel, topology: Topology
) -> None:
    """After a broker restart the consume channel can be back before the publish channel: the
    job then waits for the status channel instead of spending its deliveries at once."""
    exchange: AbstractExchange = await channel.get_exchange(topology.exchange)
    events = EventCollector(
        await QueueReader(await channel.get_queue(topology.status_queue)).start()
    )
    job = make_job(make_payload(n_messages=2, seed=43))
    async with RendererService(settings) as service:
        assert service.handler is not None
        status_channel = service.handler._publisher._channel
        await status_channel.close()
        await publish_job(exchange, job, topology.status_queue)
        await until(lambda: _in_flight(service), what="the renderer to hold the job")
        await status_channel.reopen()  # type: ignore[attr-defined]
        received = await events.until_terminal(job.task_id)

    assert [r.event.event for r in received][-1] == "completed", received
    assert all(r.event.attempt in (None, 1) for r in received), received
    dead = await channel.declare_queue(topology.dead_queue, passive=True)
    assert dead.declaration_result.message_count == 0


async def _in_flight(service: RendererService) -> bool:
    return service.handler is not None and service.handler.active == 1
