"""Duplicates are harmless and the PDF store heals itself (issue 3 items 4 and 7)."""

from __future__ import annotations

import asyncio
import gzip
import json
import uuid

import aio_pika
import asyncpg
import httpx
import pytest
from snapshot_api.db import manifests
from snapshot_shared.messages import RenderJob, encode
from snapshot_shared.topology import JOBS_ROUTING_KEY, Topology
from support.services import AMQP_URL
from support.stack import Stack, running
from support.waiting import until_sync


@pytest.fixture(scope="module")
def stack():
    with running() as s:
        yield s


def completed_snapshot(stack: Stack, name: str, n: int = 40) -> dict:
    room = stack.call("POST", "/api/v1/rooms", "olivia", json={"name": name}).json()["id"]
    stack.call(
        "POST",
        f"/api/v1/rooms/{room}/messages",
        "olivia",
        json={"messages": [{"body": f"{name} line {i}"} for i in range(n)]},
    )
    accepted = stack.call("POST", f"/api/v1/rooms/{room}/snapshots", "olivia", json={}).json()
    assert stack.wait_task(accepted["task_id"], "olivia")["status"] == "completed"
    return accepted


def renders(stack: Stack) -> float:
    text = httpx.get(f"http://127.0.0.1:{stack.renderers[0].metrics_port}/metrics").text
    for line in text.splitlines():
        if line.startswith("snapshot_renderer_render_duration_seconds_count"):
            return float(line.split()[-1])
    return 0.0


async def republish(stack: Stack, accepted: dict) -> None:
    """Deliver the snapshot's render job a second time, exactly as the API built it."""
    conn = await asyncpg.connect(stack.database_url)
    try:
        row = await conn.fetchrow(
            "SELECT s.options, s.template, s.content_hash, t.created_at"
            " FROM snapshots s JOIN tasks t ON t.snapshot_id = s.id WHERE t.id = $1",
            uuid.UUID(accepted["task_id"]),
        )
        payload_gzip = await manifests.payload_gzip(conn, row["content_hash"])
        assert payload_gzip is not None
    finally:
        await conn.close()
    job = RenderJob(
        task_id=accepted["task_id"],
        snapshot_id=accepted["snapshot_id"],
        content_hash=row["content_hash"],
        template=row["template"],
        options=json.loads(row["options"]),
        payload=json.loads(gzip.decompress(payload_gzip)),
        requested_at=row["created_at"],
        hash_version=2,
    )
    body, encoding = encode(job)
    topology = Topology(prefix=stack.prefix)
    broker = await aio_pika.connect(AMQP_URL)
    try:
        channel = await broker.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(topology.exchange)
        await exchange.publish(
            aio_pika.Message(
                body,
                content_encoding=encoding,
                correlation_id=accepted["task_id"],
                reply_to=topology.status_queue,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            ),
            routing_key=JOBS_ROUTING_KEY,
            mandatory=True,
        )
    finally:
        await broker.close()


def test_a_job_delivered_twice_renders_once_and_keeps_one_terminal_state(stack):
    accepted = completed_snapshot(stack, "Duplicate delivery")
    first = stack.call("GET", f"/api/v1/tasks/{accepted['task_id']}", "olivia").json()
    rendered = renders(stack)
    seen = _completed_events(httpx.get(f"{stack.base}/metrics").text)
    asyncio.run(republish(stack, accepted))
    until_sync(
        lambda: _completed_events(httpx.get(f"{stack.base}/metrics").text) >= seen + 1,
        60,
        "the duplicate's completed event",
    )
    again = stack.call("GET", f"/api/v1/tasks/{accepted['task_id']}", "olivia").json()
    assert again == first
    assert renders(stack) == rendered


def _completed_events(metrics_text: str) -> float:
    total = 0.0
    for line in metrics_text.splitlines():
        if line.startswith("snapshot_api_status_events_total") and 'event="completed"' in line:
            total += float(line.split()[-1])
    return total


def _download_until_ready(stack: Stack, snapshot_id: str) -> tuple[httpx.Response, int]:
    path = f"/api/v1/snapshots/{snapshot_id}/download"
    unavailable = 0

    def served() -> httpx.Response | None:
        nonlocal unavailable
        r = stack.call("GET", path, "olivia")
        if r.status_code != 503:
            return r
        assert r.headers["retry-after"] and r.json()["code"] == "artifact_missing"
        unavailable += 1
        return None

    return until_sync(served, 120, "the PDF to come back", interval=0.2), unavailable


@pytest.mark.parametrize("damage", ["evicted", "corrupted"])
def test_a_pdf_gone_from_the_store_is_rendered_again_with_the_same_etag(stack, damage):
    accepted = completed_snapshot(stack, f"Self-healing {damage}")
    path = f"/api/v1/snapshots/{accepted['snapshot_id']}/download"
    original = stack.call("GET", path, "olivia")
    assert original.status_code == 200
    (pdf,) = [p for p in stack.store.glob("??/??/*.pdf") if p.read_bytes() == original.content]
    if damage == "evicted":
        pdf.unlink()
        pdf.with_suffix(".json").unlink()
    else:
        data = bytearray(pdf.read_bytes())
        data[len(data) // 2] ^= 0xFF
        pdf.write_bytes(bytes(data))
    healed, unavailable = _download_until_ready(stack, accepted["snapshot_id"])
    assert unavailable >= 1
    assert healed.status_code == 200
    assert healed.headers["etag"] == original.headers["etag"]
    assert healed.content == original.content
    assert pdf.read_bytes() == original.content
