"""The admin summary and the API's scrape-time metrics against real PostgreSQL and RabbitMQ.

No renderer runs here: the test plays its part on the wire (status events on render.status,
nacks on render.jobs until the quorum queue dead-letters a job), so every number the summary
reports is known in advance, down to the render percentiles.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from typing import Any

import aio_pika
import asyncpg
import pytest
from prometheus_client.parser import text_string_to_metric_families
from snapshot_shared.messages import StatusEvent, encode
from support.api import Api, running_api, settings_for
from support.pdf import stored_fake_pdf
from support.services import (
    create_database,
    delete_topology,
    drop_database,
    unique,
)
from support.waiting import until

SUMMARY = "/api/v1/snapshots/metrics/summary"


@pytest.fixture
def fresh(tmp_path) -> Any:
    """A database and queue prefix of this test alone (counts start at zero)."""
    dsn, prefix = create_database(), unique("obs") + "."
    try:
        yield dsn, prefix, tmp_path
    finally:
        drop_database(dsn)
        delete_topology(prefix)


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """``{(sample name, labels): value}`` of a text exposition."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, frozenset(labels.items())), 0.0)


async def metrics_text(api: Api) -> str:
    r = await api.client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    return r.text


async def summary(api: Api, window: str | None = None) -> dict[str, Any]:
    params = {"window": window} if window else None
    r = await api.client.get(SUMMARY, params=params, headers=api.auth("root", admin=True))
    assert r.status_code == 200, r.text
    return dict(r.json())


async def snapshot(api: Api, room: str) -> dict[str, Any]:
    r = await api.snapshot(room)
    assert r.status_code == 202, r.text
    return dict(r.json())


async def complete(
    channel: aio_pika.abc.AbstractChannel, api: Api, task: dict[str, Any], cache: str, ms: float
) -> None:
    """What a renderer reports for a finished job."""
    event = StatusEvent(
        task_id=task["task_id"],
        snapshot_id=task["snapshot_id"],
        event="completed",
        progress=100,
        cache=cache,
        render_ms=ms,
        artifact=stored_fake_pdf(api.settings.store_dir, task["content_hash"])[0],
        at=dt.datetime.now(dt.UTC),
    )
    body, _ = encode(event)
    await channel.default_exchange.publish(
        aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
        routing_key=api.settings.topology.status_queue,
    )


async def dead_letter_next_job(channel: aio_pika.abc.AbstractChannel, api: Api) -> None:
    """Hand the job back until the quorum queue's delivery limit dead-letters it."""
    queue = await channel.get_queue(api.settings.topology.jobs_queue)
    for _ in range(api.settings.delivery_limit + 1):
        message = await until(
            lambda: queue.get(no_ack=False, fail=False), what="a job to hand back"
        )
        await message.nack(requeue=True)


async def test_summary_and_metrics_agree_with_a_scripted_run(fresh, channel):
    dsn, prefix, store = fresh
    settings = settings_for(dsn, prefix, store, delivery_limit=1)
    async with running_api(settings) as api:
        before = await metrics_text(api)
        room = await api.room("olivia", "Metrics room")
        await api.post_messages(room, ["one", "two"])

        # A job whose deliveries all fail ends dead-lettered: its task fails.
        await snapshot(api, room)
        await until(
            lambda: _summary_where(api, lambda s: s["render_jobs"]["messages"] == 1),
            what="the first job in render.jobs",
        )
        await dead_letter_next_job(channel, api)
        await until(
            lambda: _summary_where(api, lambda s: s["tasks_by_status"]["failed"] == 1),
            what="the dead-lettered task to fail",
        )

        # Four more: two renders (100 ms, 300 ms), one memory hit, one disk hit.
        tasks = [await snapshot(api, room) for _ in range(4)]
        # Published first: the relay drops the job of a task that has already ended.
        await until(
            lambda: _summary_where(api, lambda s: s["render_jobs"]["messages"] == 4),
            what="the four jobs in render.jobs",
        )
        for task, (cache, ms) in zip(
            tasks, [("miss", 100.0), ("miss", 300.0), ("memory", 2.0), ("disk", 5.0)], strict=True
        ):
            await complete(channel, api, task, cache, ms)
        s = await until(
            lambda: _summary_where(
                api,
                lambda s: (
                    s["tasks_by_status"]["completed"] == 4 and s["render_jobs"]["messages"] == 4
                ),
            ),
            what="four completed tasks and four jobs waiting",
        )
        assert s["window_seconds"] == 3600
        assert s["tasks_by_status"] == {"queued": 0, "rendering": 0, "completed": 4, "failed": 1}
        assert s["cache"] == {
            "completed": 4,
            "hit_ratio": 0.5,
            "by_layer": {
                "memory": {"count": 1, "ratio": 0.25},
                "disk": {"count": 1, "ratio": 0.25},
                "miss": {"count": 2, "ratio": 0.5},
            },
        }
        assert s["render_ms"] == {"p50": 200.0, "p95": pytest.approx(290.0), "renders": 2}
        assert s["failed_by_code"] == {"delivery_limit_exceeded": 1}
        assert s["outbox_backlog"] == 0 and s["broker"] == "up"
        jobs, dead = s["render_jobs"], s["dead_letter"]
        assert jobs == {"name": f"{prefix}render.jobs", "messages": 4, "consumers": 0}
        assert dead["jobs"] == 1
        assert dead["queue"] == {"name": f"{prefix}render.jobs.dead", "messages": 0, "consumers": 1}

        # The same facts in /metrics (counters as deltas: the registry is per process).
        after = await metrics_text(api)
        assert value(after, "snapshot_api_queue_messages", queue="render.jobs") == 4
        assert value(after, "snapshot_api_queue_consumers", queue="render.jobs") == 0
        assert value(after, "snapshot_api_queue_consumers", queue="render.jobs.dead") == 1
        assert value(after, "snapshot_api_queue_messages", queue="render.jobs.dead") == 0
        assert value(after, "snapshot_api_broker_up") == 1
        assert value(after, "snapshot_api_outbox_backlog") == 0

        def delta(name: str, **labels: str) -> float:
            return value(after, name, **labels) - value(before, name, **labels)

        assert delta("snapshot_api_dead_lettered_jobs_total") == 1
        assert delta("snapshot_api_snapshots_created_total", reused="false") == 5
        assert delta("snapshot_api_outbox_published_total") == 5
        latency = "snapshot_api_task_latency_seconds_count"
        assert delta(latency, outcome="completed", cache="miss") == 2
        assert delta(latency, outcome="completed", cache="memory") == 1
        assert delta(latency, outcome="completed", cache="disk") == 1
        assert delta(latency, outcome="failed", cache="none") == 1
        events = "snapshot_api_status_events_total"
        assert delta(events, event="completed", applied="true") == 4
        assert delta(events, event="failed", applied="true") == 1
        route = "/api/v1/rooms/{room_id}/snapshots"
        assert (
            delta(
                "snapshot_api_request_duration_seconds_count",
                method="POST",
                route=route,
                status="2xx",
            )
            == 5
        )

        # The window: a render completed two hours ago drops out of the last hour only.
        await _age_task(dsn, tasks[1]["task_id"], hours=2)
        recent = await summary(api)
        assert (
            recent["cache"]["completed"] == 3 and recent["cache"]["by_layer"]["miss"]["count"] == 1
        )
        assert recent["render_ms"] == {"p50": 100.0, "p95": 100.0, "renders": 1}
        assert recent["tasks_by_status"]["completed"] == 4  # counts by status are not windowed
        wide = await summary(api, "3h")
        assert wide["window_seconds"] == 3 * 3600 and wide["cache"]["completed"] == 4
        assert (await summary(api, "7000"))["cache"]["completed"] == 3  # aged 2 h: outside


async def _summary_where(api: Api, check: Any) -> dict[str, Any] | None:
    s = await summary(api)
    return s if s["render_jobs"] is not None and check(s) else None


async def _age_task(dsn: str, task_id: str, hours: int) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "UPDATE tasks SET completed_at = completed_at - make_interval(hours => $2)"
            " WHERE id = $1",
            uuid.UUID(task_id),
            hours,
        )
    finally:
        await conn.close()


async def test_summary_is_for_administrators_only(fresh):
    dsn, prefix, store = fresh
    async with running_api(settings_for(dsn, prefix, store)) as api:
        r = await api.client.get(SUMMARY, headers=api.auth("olivia"))
        assert r.status_code == 403 and r.json()["code"] == "forbidden"
        assert r.headers["content-type"] == "application/problem+json"
        r = await api.client.get(SUMMARY)
        assert r.status_code == 401 and r.json()["code"] == "unauthorized"
        admin = api.auth("root", admin=True)
        for bad in ("30", "31d", "1w", "-5", "soon"):
            r = await api.client.get(SUMMARY, params={"window": bad}, headers=admin)
            assert r.status_code == 422, bad
            assert r.json()["code"] == "validation_error", bad
        for good, seconds in (("60", 60), ("15m", 900), ("1h", 3600), ("30d", 2592000)):
            r = await api.client.get(SUMMARY, params={"window": good}, headers=admin)
            assert r.status_code == 200 and r.json()["window_seconds"] == seconds, good


async def test_outbox_backlog_is_measured_while_the_broker_is_unreachable(fresh):
    """The relay cannot publish (nor count) while RabbitMQ is away; the scrape still sees the
    backlog, and says that the broker is down instead of showing stale queue numbers."""
    dsn, prefix, store = fresh
    settings = settings_for(dsn, prefix, store, amqp_url="amqp://guest:guest@127.0.0.1:1/")
    async with running_api(settings, wait_for_broker=False) as api:
        room = await api.room("olivia", "Offline room")
        await api.post_messages(room, ["alpha"])
        for _ in range(3):
            await snapshot(api, room)
        text = await metrics_text(api)
        assert value(text, "snapshot_api_outbox_backlog") == 3
        assert value(text, "snapshot_api_broker_up") == 0
        assert math.isnan(value(text, "snapshot_api_queue_messages", queue="render.jobs"))
        assert math.isnan(value(text, "snapshot_api_queue_consumers", queue="render.jobs"))
        s = await summary(api)
        assert s["outbox_backlog"] == 3 and s["broker"] == "down"
        assert s["render_jobs"] is None and s["dead_letter"] == {"jobs": 0, "queue": None}
        assert s["tasks_by_status"]["queued"] == 3
