"""Two renderer replicas sharing one store get the same content at once: one renders."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import aio_pika
from prometheus_client import REGISTRY
from renderer_fixtures import (
    AMQP_URL,
    EventCollector,
    QueueReader,
    make_job,
    make_payload,
    publish_job,
)
from snapshot_renderer.service import RendererService
from snapshot_renderer.settings import Settings
from snapshot_shared.topology import Topology, declare, delete


def render_count() -> float:
    return REGISTRY.get_sample_value("snapshot_renderer_render_duration_seconds_count") or 0.0


def settings(topology: Topology, store: Path, name: str) -> Settings:
    return Settings(
        amqp_url=AMQP_URL,
        queue_prefix=topology.prefix,
        store_dir=store,
        concurrency=1,
        metrics_port=0,
        renderer_id=name,
    )


async def test_replicas_sharing_a_store_render_identical_content_once(tmp_path: Path) -> None:
    store = tmp_path / "store"
    topologies = [Topology(prefix=f"t{uuid.uuid4().hex[:8]}.") for _ in range(2)]
    connection = await aio_pika.connect_robust(AMQP_URL)
    try:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        collectors, exchanges = [], []
        for topo in topologies:
            declared = await declare(channel, topo)
            exchanges.append(declared.exchange)
            collectors.append(EventCollector(await QueueReader(declared.status).start()))
        payload = make_payload(n_messages=80, seed=77)
        jobs = [make_job(payload) for _ in topologies]
        async with (
            RendererService(settings(topologies[0], store, "a")),
            RendererService(settings(topologies[1], store, "b")),
        ):
            before = render_count()
            await asyncio.gather(
                *(
                    publish_job(ex, job, topo.status_queue)
                    for ex, job, topo in zip(exchanges, jobs, topologies, strict=True)
                )
            )
            results = [
                (await c.until_terminal(job.task_id))[-1].event
                for c, job in zip(collectors, jobs, strict=True)
            ]
        cleanup = await connection.channel()
        for topo in topologies:
            await delete(cleanup, topo)
    finally:
        await connection.close()

    assert [r.event for r in results] == ["completed", "completed"]
    assert sorted(r.cache or "" for r in results) == ["disk", "miss"]
    assert results[0].artifact == results[1].artifact
    assert render_count() - before == 1
    assert not list((store / ".locks").glob("*.lock"))
