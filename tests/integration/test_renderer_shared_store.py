"""Two renderer replicas sharing one store get the same content at once: one renders."""

from __future__ import annotations

import uuid
from pathlib import Path

import aio_pika
from prometheus_client import REGISTRY
from renderer_fixtures import (
    EventCollector,
    QueueReader,
    make_job,
    make_payload,
    outcomes,
    publish_job,
)
from snapshot_renderer.service import RendererService
from snapshot_renderer.settings import Settings
from snapshot_shared.topology import Topology, declare
from support.holds import MARKER, Holds, hold_settings, passing
from support.services import AMQP_URL, remove_topology
from support.waiting import until


def render_count() -> float:
    return REGISTRY.get_sample_value("snapshot_renderer_render_duration_seconds_count") or 0.0


def disk_misses() -> float:
    labels = {"layer": "disk", "result": "miss"}
    return REGISTRY.get_sample_value("snapshot_renderer_cache_requests_total", labels) or 0.0


async def _above(count: float) -> bool:
    return disk_misses() > count


def settings(topology: Topology, store: Path, name: str, holds: Holds) -> Settings:
    return Settings(
        **hold_settings(holds),  # type: ignore[arg-type]
        amqp_url=AMQP_URL,
        queue_prefix=topology.prefix,
        store_dir=store,
        concurrency=1,
        metrics_port=0,
        renderer_id=name,
    )


async def test_replicas_sharing_a_store_render_identical_content_once(tmp_path: Path) -> None:
    """Replica b gets the job while replica a renders it: b waits on a's render (the key's
    file lock) and takes its PDF from the store, instead of rendering it again."""
    store = tmp_path / "store"
    topologies = [Topology(prefix=f"t{uuid.uuid4().hex[:8]}.") for _ in range(2)]
    holds = Holds()
    connection = await aio_pika.connect_robust(AMQP_URL)
    try:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        collectors, exchanges = [], []
        for topo in topologies:
            declared = await declare(channel, topo)
            exchanges.append(declared.exchange)
            collectors.append(EventCollector(await QueueReader(declared.status).start()))
        payload = make_payload(n_messages=80, seed=77, name=f"Shared {MARKER}")
        jobs = [make_job(payload) for _ in topologies]
        async with (
            RendererService(settings(topologies[0], store, "a", holds)),
            RendererService(settings(topologies[1], store, "b", holds)),
        ):
            before, retried = render_count(), outcomes("retried")
            await publish_job(exchanges[0], jobs[0], topologies[0].status_queue)
            held = await holds.next()  # replica a renders, holding the key's lock
            missed = disk_misses()
            await publish_job(exchanges[1], jobs[1], topologies[1].status_queue)
            # b's cache look-up missed: it goes on to the key's lock, which a holds (b reports
            # "started" only if it gets to render itself, which it must not)
            await until(lambda: _above(missed), 60, "replica b's disk look-up to miss")
            async with passing(holds):  # a second render would be counted, not hang
                held.release()
                results = [
                    (await c.until_terminal(job.task_id))[-1].event
                    for c, job in zip(collectors, jobs, strict=True)
                ]
    finally:
        await connection.close()
        for topo in topologies:
            await remove_topology(topo)
        holds.close()

    assert [r.event for r in results] == ["completed", "completed"]
    assert [r.cache for r in results] == ["miss", "disk"]
    assert results[0].artifact == results[1].artifact
    assert holds.count == 1 and render_count() - before == 1
    assert outcomes("retried") == retried  # the follower did not get there by a retry
    assert not list((store / ".locks").glob("*.lock"))
