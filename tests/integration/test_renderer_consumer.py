"""The renderer consumer against the real RabbitMQ: events, caches, store, dead-lettering."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import pytest
from aio_pika.abc import AbstractChannel, AbstractExchange
from prometheus_client import REGISTRY
from pypdf import PdfReader
from renderer_fixtures import (
    EventCollector,
    QueueReader,
    Received,
    declared_channel,
    make_job,
    make_payload,
    outcomes,
    publish_body,
    publish_job,
)
from snapshot_renderer.service import RendererService
from snapshot_renderer.settings import Settings
from snapshot_shared.messages import RenderOptions
from snapshot_shared.store import meta_path, pdf_path
from snapshot_shared.topology import Topology, declare_api_side
from support.holds import MARKER, Holds, hold_settings, passing
from support.services import AMQP_URL, remove_topology
from support.waiting import until


@pytest.fixture
async def channel(topology: Topology) -> AsyncIterator[AbstractChannel]:
    """A confirmed channel with this test's topology declared, all deleted afterwards."""
    async with declared_channel(topology) as chan:
        yield chan


@pytest.fixture
def settings(tmp_path: Path, topology: Topology) -> Settings:
    return Settings(
        amqp_url=AMQP_URL,
        queue_prefix=topology.prefix,
        store_dir=tmp_path / "store",
        concurrency=1,
        metrics_port=0,
        renderer_id="test-renderer",
        shutdown_grace_seconds=30,
    )


def completed(received: list[Received]) -> Any:
    last = received[-1].event
    assert last.event == "completed", last
    return last


def pdf_text(path: Path) -> str:
    reader = PdfReader(io.BytesIO(path.read_bytes()))
    return "\n".join(page.extract_text() for page in reader.pages)


async def queue_depth(channel: AbstractChannel, name: str) -> int:
    declared = await channel.declare_queue(name, passive=True)
    return declared.declaration_result.message_count or 0


def render_count() -> float:
    value = REGISTRY.get_sample_value("snapshot_renderer_render_duration_seconds_count")
    return value or 0.0


async def test_miss_then_memory_then_disk(
    settings: Settings,
    channel: AbstractChannel,
    exchange: AbstractExchange,
    events: EventCollector,
    topology: Topology,
) -> None:
    payload = make_payload(n_messages=12, seed=11)
    options = RenderOptions(timezone="Europe/Berlin", title="Weekly sync").model_dump(mode="json")

    async with RendererService(settings):
        first = make_job(payload, options)
        await publish_job(exchange, first, topology.status_queue)
        received = await events.until_terminal(first.task_id)

        names = [r.event.event for r in received]
        assert names[0] == "started" and names[-1] == "completed"
        assert set(names[1:-1]) == {"progress"}
        phases = [r.event.phase for r in received]
        assert phases[:3] == ["started", "rendering", "storing"]
        progress = [r.event.progress for r in received]
        assert progress == sorted(progress) and progress[-1] == 100
        assert all(r.correlation_id == str(first.task_id) for r in received)
        assert all(r.headers.get("x-request-id") == first.request_id for r in received)
        done = completed(received)
        assert done.cache == "miss" and done.renderer_id == "test-renderer"
        assert done.snapshot_id == first.snapshot_id and done.render_ms > 0
        artifact = done.artifact
        assert artifact is not None and artifact.pages >= 1

        stored = pdf_path(settings.store_dir, artifact.key)
        assert hashlib.sha256(stored.read_bytes()).hexdigest() == artifact.pdf_sha256
        assert stored.stat().st_size == artifact.bytes
        assert json.loads(meta_path(settings.store_dir, artifact.key).read_text())["pages"] == (
            artifact.pages
        )
        text = pdf_text(stored)
        assert "Weekly sync" in text and "Design review" in text
        for i in range(12):
            assert f"Message number {i} of room 11." in text

        again = make_job(payload, options)
        await publish_job(exchange, again, topology.status_queue)
        hit_events = await events.until_terminal(again.task_id)
        assert [r.event.event for r in hit_events] == ["completed"]  # a hit is one event
        memory_hit = completed(hit_events)
        assert memory_hit.cache == "memory" and memory_hit.artifact == artifact

    async with RendererService(settings):  # a fresh replica: empty memory, same volume
        third = make_job(payload, options)
        await publish_job(exchange, third, topology.status_queue, gzip=True)
        disk_hit = completed(await events.until_terminal(third.task_id))
        assert disk_hit.cache == "disk" and disk_hit.artifact == artifact

    assert await queue_depth(channel, topology.jobs_queue) == 0
    assert await queue_depth(channel, topology.dead_queue) == 0


async def test_memory_hit_rewrites_a_pdf_missing_from_disk(
    settings: Settings, exchange: AbstractExchange, events: EventCollector, topology: Topology
) -> None:
    payload = make_payload(n_messages=2, seed=12)
    async with RendererService(settings):
        first = make_job(payload)
        await publish_job(exchange, first, topology.status_queue)
        artifact = completed(await events.until_terminal(first.task_id)).artifact
        stored = pdf_path(settings.store_dir, artifact.key)
        stored.unlink()

        again = make_job(payload)
        await publish_job(exchange, again, topology.status_queue)
        hit = completed(await events.until_terminal(again.task_id))

    assert hit.cache == "memory"
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == artifact.pdf_sha256


async def test_identical_concurrent_jobs_render_once(
    settings: Settings, exchange: AbstractExchange, events: EventCollector, topology: Topology
) -> None:
    """The follower must join the leader's render in progress, not hit the cache after it."""
    payload = make_payload(n_messages=30, seed=13, name=f"Coalesced {MARKER}")
    leader, follower = (make_job(payload) for _ in range(2))
    holds = Holds()
    try:
        async with RendererService(settings.model_copy(update=hold_settings(holds))):
            before, retried = render_count(), outcomes("retried")
            await publish_job(exchange, leader, topology.status_queue)
            held = await holds.next()  # the leader's render is in progress, and stays there
            await publish_job(exchange, follower, topology.status_queue)
            # "rendering" comes after the cache look-up missed and right before the follower
            # looks for a render of its key in progress: it can only wait on the leader's.
            await events.until_phase(follower.task_id, "rendering")
            async with passing(holds):  # a second render would be counted, not hang
                held.release()
                results = [
                    completed(await events.until_terminal(job.task_id))
                    for job in (leader, follower)
                ]
    finally:
        holds.close()

    assert holds.count == 1 and render_count() - before == 1
    assert outcomes("retried") == retried  # the follower did not get there by a retry
    assert [r.cache for r in results] == ["miss", "memory"]
    assert results[0].artifact == results[1].artifact


async def test_malformed_bodies_are_dead_lettered(
    settings: Settings,
    channel: AbstractChannel,
    exchange: AbstractExchange,
    events: EventCollector,
    topology: Topology,
) -> None:
    dead = await QueueReader(await channel.get_queue(topology.dead_queue)).start()
    task_id, snapshot_id = uuid.uuid4(), uuid.uuid4()
    readable = json.dumps(
        {"task_id": str(task_id), "snapshot_id": str(snapshot_id), "payload": "not a job"}
    ).encode()

    async with RendererService(settings):
        await publish_body(exchange, readable, topology.status_queue)
        received = await events.until_terminal(task_id)
        first_dead = await dead.next()
        await publish_body(exchange, b"\x00 not json {", topology.status_queue)
        second_dead = await dead.next()
        await publish_body(exchange, b"garbage", topology.status_queue, encoding="gzip")
        third_dead = await dead.next()
        # A well-formed job whose payload cannot be canonical JSON (NaN): refused the same way.
        nan_job = make_job(make_payload(n_messages=1, seed=16)).model_dump(mode="json")
        nan_job["payload"]["messages"][0]["score"] = float("nan")
        nan_body = json.dumps(nan_job).encode()
        await publish_body(exchange, nan_body, topology.status_queue)
        nan_events = await events.until_terminal(uuid.UUID(nan_job["task_id"]))
        fourth_dead = await dead.next()

    failed = received[-1].event
    assert [r.event.event for r in received] == ["failed"]
    assert failed.snapshot_id == snapshot_id
    assert failed.error is not None and failed.error.code == "bad_job"
    assert failed.error.retryable is False
    assert first_dead.body == readable
    assert second_dead.body == b"\x00 not json {"
    assert third_dead.body == b"garbage"
    assert [r.event.event for r in nan_events] == ["failed"]
    nan_error = nan_events[-1].event.error
    assert nan_error is not None and nan_error.code == "bad_job"
    assert "canonical" in nan_error.message
    assert fourth_dead.body == nan_body


@pytest.mark.parametrize(
    "change",
    [
        {"content_hash": "0" * 64},
        {"template": "no-such-template"},
        {"options": {"page_size": "A0"}},
    ],
    ids=["hash-mismatch", "unknown-template", "invalid-options"],
)
async def test_bad_jobs_fail_permanently_and_are_acked(
    settings: Settings,
    channel: AbstractChannel,
    exchange: AbstractExchange,
    events: EventCollector,
    topology: Topology,
    change: dict[str, Any],
) -> None:
    payload = make_payload(n_messages=1, seed=14)
    job = make_job(payload, change.get("options"), change.get("template", "snapshot"))
    if "content_hash" in change:
        job = job.model_copy(update=change)

    async with RendererService(settings):
        await publish_job(exchange, job, topology.status_queue)
        received = await events.until_terminal(job.task_id)

    failed = received[-1].event
    assert failed.event == "failed" and failed.error is not None
    assert failed.error.code == "bad_job" and failed.error.retryable is False
    assert await queue_depth(channel, topology.jobs_queue) == 0
    assert await queue_depth(channel, topology.dead_queue) == 0


async def test_a_job_over_the_snapshot_limits_fails_before_any_render(
    settings: Settings,
    channel: AbstractChannel,
    exchange: AbstractExchange,
    events: EventCollector,
    topology: Topology,
) -> None:
    """The renderer holds jobs to the same per-snapshot limits as the API (a job the API
    would refuse, e.g. from an API with other settings, is never laid out)."""
    dead = await QueueReader(await channel.get_queue(topology.dead_queue)).start()
    strict = settings.model_copy(update={"max_snapshot_messages": 3})
    over = make_job(make_payload(n_messages=4, seed=17))
    within = make_job(make_payload(n_messages=3, seed=17))
    renders_before = render_count()

    async with RendererService(strict):
        await publish_job(exchange, over, topology.status_queue)
        refused = await events.until_terminal(over.task_id)
        rejected = await dead.next()
        await publish_job(exchange, within, topology.status_queue)
        accepted = await events.until_terminal(within.task_id)

    assert [r.event.event for r in refused] == ["failed"]
    error = refused[-1].event.error
    assert error is not None and error.code == "bad_job" and error.retryable is False
    assert "snapshot_too_large" in error.message and "the limit is 3" in error.message
    assert json.loads(rejected.body)["task_id"] == str(over.task_id)
    assert completed(accepted).cache == "miss"
    assert render_count() == renders_before + 1  # the refused job was never rendered


async def test_unroutable_reply_to_dead_letters_the_job(
    settings: Settings, channel: AbstractChannel, exchange: AbstractExchange, topology: Topology
) -> None:
    dead = await QueueReader(await channel.get_queue(topology.dead_queue)).start()
    job = make_job(make_payload(n_messages=1, seed=15))

    async with RendererService(settings):
        await publish_job(exchange, job, f"{topology.prefix}no.such.queue")
        message = await dead.next()

    assert json.loads(message.body)["task_id"] == str(job.task_id)


async def test_shutdown_lets_the_in_flight_job_finish(
    settings: Settings,
    channel: AbstractChannel,
    exchange: AbstractExchange,
    events: EventCollector,
    topology: Topology,
) -> None:
    job = make_job(make_payload(n_messages=80, seed=16, name=f"Shutdown {MARKER}"))
    holds = Holds()
    service = RendererService(settings.model_copy(update=hold_settings(holds)))
    await service.start()
    try:
        await publish_job(exchange, job, topology.status_queue)
        held = await holds.next()  # the render is in progress, and stays there
        stopping = asyncio.ensure_future(service.stop())  # consumer cancelled mid-render

        async def stopped_consuming() -> bool:
            return not (await service.health())[1]["consuming"]

        await until(stopped_consuming, what="the renderer to stop consuming")
        assert not stopping.done()  # still waiting for the in-flight job
        held.release()
        await stopping
    finally:
        holds.close()  # releases a render still held, so stop() need not wait out its grace
        await service.stop()

    assert completed(await events.until_terminal(job.task_id, timeout=10)).cache == "miss"
    assert await queue_depth(channel, topology.jobs_queue) == 0


async def test_render_over_budget_fails_with_render_timeout(
    settings: Settings, exchange: AbstractExchange, events: EventCollector, topology: Topology
) -> None:
    job = make_job(make_payload(n_messages=5, seed=17, name=f"Over budget {MARKER}"))
    holds = Holds()  # the render is held and never released: only the budget can end it
    tight = settings.model_copy(update={"render_timeout_seconds": 5, **hold_settings(holds)})
    try:
        async with RendererService(tight):
            await publish_job(exchange, job, topology.status_queue)
            await holds.next()  # reached the render; never released
            failed = (await events.until_terminal(job.task_id))[-1].event
    finally:
        holds.close()

    assert failed.event == "failed" and failed.error is not None
    assert failed.error.code == "render_timeout" and failed.error.retryable is False


@pytest.mark.usefixtures("channel")  # declares this test's topology and deletes it afterwards
async def test_health_and_metrics_endpoints(settings: Settings) -> None:
    async with RendererService(settings) as service:
        base = f"http://127.0.0.1:{service.ops.port}"
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            health = await client.get("/healthz")
            metrics = await client.get("/metrics")
            missing = await client.get("/nope")
            await asyncio.wait_for(service.pool.check(fresh_for=0), 10)  # a real round-trip

    assert health.status_code == 200
    assert health.json()["status"] == "ok" and health.json()["amqp"] == "ok"
    assert health.json()["consuming"] is True
    assert metrics.status_code == 200
    assert "snapshot_renderer_jobs_in_flight" in metrics.text
    assert "snapshot_renderer_cache_requests_total" in metrics.text
    assert missing.status_code == 404


async def test_a_failed_declaration_is_retried_until_the_renderer_consumes(
    settings: Settings, topology: Topology
) -> None:
    """Replicas and API workers declaring the quorum queues at once can get a connection closed
    (541 INTERNAL_ERROR); a conflicting queue fails every declaration the same way until it is
    removed. The renderer retries, reports unhealthy meanwhile, then consumes."""
    connection = await aio_pika.connect_robust(AMQP_URL)
    service = RendererService(settings)
    try:
        await declare_api_side(await connection.channel(), topology)  # as a running API has
        squat = await connection.channel()
        await squat.declare_queue(topology.jobs_queue, durable=True)  # classic, not quorum
        starting = asyncio.create_task(service.start())

        async def declaration_failed() -> bool:
            return service.failed_declarations > 0

        await until(declaration_failed, timeout=120, what="a failed declaration")
        healthy, details = await service.health()
        assert not healthy and details["consuming"] is False
        healthz = f"http://127.0.0.1:{service.ops.port}/healthz"
        async with httpx.AsyncClient(timeout=10) as client:
            unready = await client.get(healthz)  # served while start() still declares
        assert unready.status_code == 503 and unready.json()["status"] == "unavailable"
        await squat.queue_delete(topology.jobs_queue)
        await asyncio.wait_for(starting, 60)
        healthy, details = await service.health()
        assert healthy and details["consuming"] is True
        async with httpx.AsyncClient(timeout=10) as client:
            assert (await client.get(healthz)).status_code == 200

        chan = await connection.channel(publisher_confirms=True, on_return_raises=True)
        exchange = await chan.get_exchange(topology.exchange)
        events = EventCollector(
            await QueueReader(await chan.get_queue(topology.status_queue)).start()
        )
        job = make_job(make_payload(n_messages=2, seed=17))
        await publish_job(exchange, job, topology.status_queue)
        assert completed(await events.until_terminal(job.task_id)).cache == "miss"
    finally:
        await service.stop()
        await connection.close()
        await remove_topology(topology)
