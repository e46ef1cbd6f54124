"""Snapshot creation, publishing, status events and downloads against real PostgreSQL/RabbitMQ."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import uuid
from collections import Counter

import aio_pika
import asyncpg
import pytest
from prometheus_client import REGISTRY
from snapshot_api.db import manifests
from snapshot_api.messaging.job_bodies import body_of
from snapshot_api.services.tasks import apply_event
from snapshot_shared import store
from snapshot_shared.hashing import canonical_json, payload_content_hash
from snapshot_shared.messages import Artifact, EventError, StatusEvent, decode_job, encode
from support.api import running_api, settings_for
from support.pdf import fake_pdf
from support.waiting import next_message, until


@pytest.fixture
async def api(database_url, queue_prefix, tmp_path):
    settings = settings_for(database_url, queue_prefix, tmp_path, max_snapshot_messages=20)
    async with running_api(settings) as api:
        yield api


async def test_create_persists_snapshot_task_payload_outbox_and_audit_atomically(
    database_url, queue_prefix, tmp_path
):
    # The broker is unreachable: the 202 must still come, with the job kept in the outbox.
    settings = settings_for(
        database_url, queue_prefix, tmp_path, amqp_url="amqp://guest:guest@127.0.0.1:1/"
    )
    async with running_api(settings, wait_for_broker=False) as api:
        room = await api.room("olivia", "Outbox room")
        await api.post_messages(room, ["alpha", "beta"])
        r = await api.snapshot(room, body={"options": {"timezone": "Europe/Berlin"}})
        assert r.status_code == 202, r.text
        ready = await api.client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["broker"] == "down"
        assert (await api.client.get("/healthz")).status_code == 200
    body = r.json()
    assert r.headers["location"] == f"/api/v1/tasks/{body['task_id']}"
    conn = await asyncpg.connect(database_url)
    try:
        snap = await conn.fetchrow(
            "SELECT * FROM snapshots WHERE id = $1", uuid.UUID(body["snapshot_id"])
        )
        task = await conn.fetchrow("SELECT * FROM tasks WHERE id = $1", uuid.UUID(body["task_id"]))
        payload = await manifests.payload_gzip(conn, body["content_hash"])
        outbox = await conn.fetch("SELECT * FROM outbox WHERE task_id = $1", task["id"])
        audit = await conn.fetch("SELECT * FROM audit WHERE snapshot_id = $1", snap["id"])
        job_body = await body_of(conn, outbox[0], 1024)
    finally:
        await conn.close()
    assert snap["status"] == "queued" and snap["message_count"] == 2
    assert task["status"] == "queued" and task["deadline"] > task["created_at"]
    assert payload is not None
    frozen = json.loads(gzip.decompress(payload))
    assert [m["body"] for m in frozen["messages"]] == ["alpha", "beta"]
    options = json.loads(snap["options"]) if isinstance(snap["options"], str) else snap["options"]
    assert payload_content_hash(frozen, options, snap["template"], 2) == body["content_hash"]
    assert len(outbox) == 1 and outbox[0]["published_at"] is None
    assert outbox[0]["manifest"] == body["content_hash"]  # the relay splices the payload in
    job = decode_job(*job_body)
    assert (str(job.task_id), job.content_hash) == (body["task_id"], body["content_hash"])
    assert job.hash_version == 2
    assert canonical_json(job.payload) == canonical_json(frozen)
    assert [(a["action"], a["outcome"], a["actor"]) for a in audit] == [
        ("snapshot.create", "accepted", "olivia")
    ]


async def test_job_is_published_persistent_with_reply_to_and_request_id(api, channel):
    room = await api.room()
    await api.post_messages(room, ["hello"])
    r = await api.snapshot(room, headers={"X-Request-ID": "req-abc-123"})
    assert r.status_code == 202 and r.headers["x-request-id"] == "req-abc-123"
    queue = await channel.get_queue(api.settings.topology.jobs_queue)
    message = await next_message(queue)
    while message.correlation_id != r.json()["task_id"]:  # jobs of earlier tests in this module
        await message.ack()
        message = await next_message(queue)
    await message.ack()
    job = decode_job(message.body, message.content_encoding)
    assert str(job.task_id) == r.json()["task_id"] == message.correlation_id
    assert message.reply_to == api.settings.topology.status_queue
    assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert message.headers["x-request-id"] == "req-abc-123" == job.request_id


async def _send(channel, api, event: StatusEvent) -> None:
    body, _ = encode(event)
    await channel.default_exchange.publish(
        aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
        routing_key=api.settings.topology.status_queue,
    )


def _event(body: dict, name: str, progress: int = 0, **extra) -> StatusEvent:
    return StatusEvent(
        task_id=body["task_id"],
        snapshot_id=body["snapshot_id"],
        event=name,
        progress=progress,
        at=dt.datetime.now(dt.UTC),
        **extra,
    )


async def _task(api, task_id: str, user: str = "olivia") -> dict:
    return (await api.client.get(f"/api/v1/tasks/{task_id}", headers=api.auth(user))).json()


async def test_status_events_move_the_task_forward_only_and_serve_the_pdf(api, channel):
    room = await api.room("olivia", "Ünïcode Room / Q4")
    await api.add_member(room, "vera", "viewer")
    await api.post_messages(room, ["one"])
    body = (await api.snapshot(room)).json()
    download = f"/api/v1/snapshots/{body['snapshot_id']}/download"
    not_ready = await api.client.get(download, headers=api.auth("vera"))
    assert not_ready.status_code == 409 and not_ready.json()["code"] == "not_ready"

    start = _events_consumed()
    await _send(channel, api, _event(body, "started", 5, phase="started"))
    await _send(channel, api, _event(body, "progress", 40, phase="rendering"))
    task = await until(lambda: _progress_at_least(api, body["task_id"], 40), what="progress 40")
    assert task["status"] == "rendering" and task["phase"] == "rendering"
    r = await api.client.get(f"/api/v1/tasks/{body['task_id']}", headers=api.auth("olivia"))
    assert r.headers["retry-after"] == "1"

    pdf = fake_pdf(body["content_hash"], filler=b"x" * 5000)
    key = hashlib.sha256(b"render-key").hexdigest()
    path = store.pdf_path(api.settings.store_dir, key)
    path.parent.mkdir(parents=True)
    path.write_bytes(pdf)
    digest = hashlib.sha256(pdf).hexdigest()
    done = _event(
        body,
        "completed",
        100,
        phase="completed",
        cache="miss",
        render_ms=12.0,
        artifact=Artifact(key=key, bytes=len(pdf), pages=1, pdf_sha256=digest),
    )
    await _send(channel, api, done)
    task = await until(lambda: _status_is(api, body["task_id"], "completed"), what="completed")
    assert (task["progress"], task["cache"], task["phase"]) == (100, "miss", "completed")
    # Sent after the task is terminal, so they are stale whatever order they are handled in,
    # and waited for: each must be consumed (and found to change nothing) before the test
    # looks again, and none may be left on the module's status queue for the next test.
    await until(lambda: _consumed_since(start, 3), what="the first three events consumed")
    before = _events_consumed()
    await _send(channel, api, done)  # a duplicate changes nothing
    await _send(channel, api, _event(body, "progress", 50, phase="late"))  # stale
    await _send(channel, api, _event(body, "failed", 0, phase="late"))  # stale
    await until(lambda: _consumed_since(before, 3), what="the three stale events consumed")
    assert _events_consumed() - before == Counter(
        {("completed", "false"): 1, ("progress", "false"): 1, ("failed", "false"): 1}
    )
    task = await _task(api, body["task_id"])
    assert (task["status"], task["progress"], task["cache"], task["phase"]) == (
        "completed",
        100,
        "miss",
        "completed",
    )
    assert (
        "retry-after"
        not in (
            await api.client.get(f"/api/v1/tasks/{body['task_id']}", headers=api.auth("olivia"))
        ).headers
    )

    r = await api.client.get(download, headers=api.auth("vera"))
    assert r.status_code == 200 and r.content == pdf
    assert r.headers["content-type"] == "application/pdf"
    assert r.headers["etag"] == f'"{digest}"'
    assert "filename*=UTF-8''%C3%BCn%C3%AFcode-room-q4-" in r.headers["content-disposition"]
    part = await api.client.get(download, headers={**api.auth("vera"), "Range": "bytes=0-7"})
    assert part.status_code == 206 and part.content == pdf[:8]
    cached = await api.client.get(
        download, headers={**api.auth("vera"), "If-None-Match": r.headers["etag"]}
    )
    assert cached.status_code == 304 and cached.content == b""
    snap = (
        await api.client.get(f"/api/v1/snapshots/{body['snapshot_id']}", headers=api.auth("vera"))
    ).json()
    assert snap["status"] == "completed" and snap["artifact"]["pdf_sha256"] == digest
    assert snap["task"]["status"] == "completed"
    stranger = await api.client.get(download, headers=api.auth("mallory"))
    assert stranger.status_code == 404


def _events_consumed() -> Counter[tuple[str, str]]:
    """``snapshot_api_status_events_total`` of the in-process API, by (event, applied)."""
    counts: Counter[tuple[str, str]] = Counter()
    for metric in REGISTRY.collect():
        if metric.name == "snapshot_api_status_events":
            for sample in metric.samples:
                if sample.name.endswith("_total") and sample.value:
                    counts[(sample.labels["event"], sample.labels["applied"])] += int(sample.value)
    return counts


async def _consumed_since(before: Counter[tuple[str, str]], n: int) -> bool:
    return (_events_consumed() - before).total() >= n


async def _progress_at_least(api, task_id: str, progress: int) -> dict | None:
    task = await _task(api, task_id)
    return task if task["progress"] >= progress else None


async def _status_is(api, task_id: str, status: str) -> dict | None:
    task = await _task(api, task_id)
    return task if task["status"] == status else None


async def _states(conn: asyncpg.Connection, task_id: str) -> dict:
    row = await conn.fetchrow(
        "SELECT t.status, t.progress, t.phase, t.error_code, t.completed_at,"
        " s.status AS snapshot_status, s.error_code AS snapshot_error, s.artifact_key"
        " FROM tasks t JOIN snapshots s ON s.id = t.snapshot_id WHERE t.id = $1",
        uuid.UUID(task_id),
    )
    return dict(row)


async def test_applying_an_event_is_forward_only_and_the_snapshot_follows(api, database_url):
    """``apply_event`` against the real database: what changes, and what is ignored."""
    room = await api.room("olivia", "Events room")
    await api.post_messages(room, ["one"])
    first, second = (await api.snapshot(room)).json(), (await api.snapshot(room)).json()
    conn = await asyncpg.connect(database_url)
    try:
        assert await apply_event(conn, _event(first, "progress", 40, phase="rendering"))
        assert not await apply_event(conn, _event(first, "progress", 30, phase="behind"))
        assert not await apply_event(conn, _event(first, "started", 5, phase="started"))
        other_snapshot = {**first, "snapshot_id": str(uuid.uuid4())}
        assert not await apply_event(conn, _event(other_snapshot, "failed", 100))
        unknown_task = {**first, "task_id": str(uuid.uuid4())}
        assert not await apply_event(conn, _event(unknown_task, "started", 5))
        state = await _states(conn, first["task_id"])
        assert (state["status"], state["progress"]) == ("rendering", 40)
        assert state["phase"] == "rendering"
        assert state["snapshot_status"] == "rendering"

        timeout = EventError(code="render_timeout", message="The render took too long")
        failed = _event(first, "failed", 100, phase="failed", error=timeout)
        assert await apply_event(conn, failed)
        assert not await apply_event(conn, failed)  # a duplicate changes nothing
        artifact = Artifact(key="a" * 64, bytes=10, pages=1, pdf_sha256="b" * 64)
        late = _event(first, "completed", 100, cache="miss", artifact=artifact)
        assert not await apply_event(conn, late)  # nothing leaves a terminal state
        state = await _states(conn, first["task_id"])
        assert (state["status"], state["error_code"]) == ("failed", "render_timeout")
        assert state["completed_at"] is not None and state["artifact_key"] is None
        assert (state["snapshot_status"], state["snapshot_error"]) == ("failed", "render_timeout")

        done = _event(second, "completed", 100, cache="memory", artifact=artifact)
        assert await apply_event(conn, done)  # straight from queued: a cache hit's one event
        state = await _states(conn, second["task_id"])
        assert (state["status"], state["progress"]) == ("completed", 100)
        assert (state["snapshot_status"], state["artifact_key"]) == ("completed", "a" * 64)
    finally:
        await conn.close()


async def test_snapshot_access_scope_and_size_rules(api):
    room = await api.room()
    await api.add_member(room, "vera", "viewer")
    await api.post_messages(room, [f"m{i}" for i in range(21)])
    assert (await api.snapshot(room, user="vera")).status_code == 403
    assert (await api.snapshot(room, user="mallory")).status_code == 404
    r = await api.client.post(f"/api/v1/rooms/{room}/snapshots", json={})
    assert r.status_code == 401
    too_big = await api.snapshot(room)
    assert too_big.status_code == 413 and too_big.json()["code"] == "snapshot_too_large"
    assert too_big.json()["limit"] == 20 and "20" in too_big.json()["detail"]
    bad = [
        {"scope": {"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"}},
        {"scope": {"sections": ["members", "secrets"]}},
        {"scope": {"from": "2026-01-02T00:00:00"}},
        {"options": {"timezone": "Mars/Olympus"}},
        {"options": {"page_size": "A0"}},
        {"unknown": True},
    ]
    for body in bad:
        r = await api.snapshot(room, body=body)
        assert r.status_code == 422 and r.json()["code"] == "validation_error", body
    ok = await api.snapshot(room, body={"scope": {"sections": ["members"]}})
    assert ok.status_code == 202
    listed = (
        await api.client.get(f"/api/v1/rooms/{room}/snapshots", headers=api.auth("vera"))
    ).json()
    assert [s["id"] for s in listed["items"]] == [ok.json()["snapshot_id"]]
    assert listed["items"][0]["message_count"] == 0


async def test_idempotency_key_returns_the_original_or_refuses_a_different_body(api):
    room = await api.room()
    await api.post_messages(room, ["a"])
    key = {"Idempotency-Key": "k-1"}
    first = await api.snapshot(room, headers=key)
    again = await api.snapshot(room, headers=key)
    assert first.status_code == again.status_code == 202
    assert again.json()["snapshot_id"] == first.json()["snapshot_id"]
    assert again.json()["task_id"] == first.json()["task_id"]
    other = await api.snapshot(room, body={"options": {"page_size": "Letter"}}, headers=key)
    assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused"
    listed = (
        await api.client.get(f"/api/v1/rooms/{room}/snapshots", headers=api.auth("olivia"))
    ).json()
    assert len(listed["items"]) == 1
