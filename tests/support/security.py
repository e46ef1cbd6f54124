"""Helpers of the security tests: a room with one member of each role and a completed snapshot,
the audit rows of a request, and the checks every problem answer must pass."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aio_pika
import asyncpg
import httpx
from aio_pika.abc import AbstractChannel
from snapshot_shared import store
from snapshot_shared.messages import Artifact, StatusEvent, encode

from support.api import Api, running_api, settings_for
from support.pdf import fake_pdf, stored_fake_pdf
from support.services import AMQP_URL
from support.waiting import until

OWNER, EDITOR, VIEWER, STRANGER, ADMIN = "olivia", "eddie", "vera", "mallory", "ada"
# What no problem document may contain: tracebacks, SQL, file system paths, driver names.
LEAKS = re.compile(
    r"Traceback|File \"|\.py\b|/work/|/usr/|/tmp/|site-packages|asyncpg|psycopg|"
    r"\bSELECT\b|\bINSERT\b|\bUPDATE\b|\bDELETE FROM\b|\bWHERE\b|syntax error|pydantic\.dev",
)


@dataclass
class World:
    """Room ``room`` (owner, editor, viewer) with a completed snapshot; ``other_*`` belong to
    a room of ``ivan`` that none of them is in."""

    room: str
    snapshot: str
    task: str
    other_room: str
    other_snapshot: str
    other_task: str
    content_hash: str  # of ``snapshot``: its download is ``fake_pdf(content_hash)``


async def build_world(api: Api) -> World:
    room = await api.room(OWNER, "Security review")
    await api.add_member(room, EDITOR, "editor")
    await api.add_member(room, VIEWER, "viewer")
    await api.post_messages(room, ["first", "second"], user=EDITOR)
    created = await api.snapshot(room)
    assert created.status_code == 202, created.text
    await complete(api, created.json())
    other_room = await api.room("ivan", "Ivan's private room")
    await api.post_messages(other_room, ["private"], user="ivan")
    other = await api.snapshot(other_room, user="ivan")
    assert other.status_code == 202, other.text
    await complete(api, other.json(), user="ivan")
    return World(
        room,
        created.json()["snapshot_id"],
        created.json()["task_id"],
        other_room,
        other.json()["snapshot_id"],
        other.json()["task_id"],
        created.json()["content_hash"],
    )


async def complete(api: Api, accepted: dict[str, Any], user: str = OWNER) -> None:
    """Finish a snapshot the way a renderer would: a PDF carrying its content hash in the store
    (``fake_pdf``), then a ``completed`` event."""
    key = hashlib.sha256(accepted["content_hash"].encode() + b"|test").hexdigest()
    path = store.pdf_path(api.settings.store_dir, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(fake_pdf(accepted["content_hash"]))
    await publish_completed(api, accepted, key)

    async def done() -> bool:
        r = await api.client.get(f"/api/v1/tasks/{accepted['task_id']}", headers=api.auth(user))
        return r.json().get("status") == "completed"

    await until(done, what="the snapshot to complete")


async def publish_completed(
    api: Api,
    accepted: dict[str, Any],
    key: str,
    pdf: bytes | None = None,
    channel: AbstractChannel | None = None,
) -> None:
    """Publish the ``completed`` event a renderer would send for ``pdf`` (by default
    ``fake_pdf`` of the snapshot's content) stored under ``key``; anyone on the broker can.
    On ``channel`` when given (so it follows what the test published there before), else on a
    connection of its own."""
    pdf = fake_pdf(accepted["content_hash"]) if pdf is None else pdf
    event = StatusEvent(
        task_id=accepted["task_id"],
        snapshot_id=accepted["snapshot_id"],
        event="completed",
        progress=100,
        phase="completed",
        cache="miss",
        artifact=Artifact(
            key=key,
            bytes=len(pdf),
            pages=1,
            pdf_sha256=hashlib.sha256(pdf).hexdigest(),
        ),
        at=dt.datetime.now(dt.UTC),
    )
    body, _ = encode(event)
    message = aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
    status_queue = api.settings.topology.status_queue
    if channel is not None:
        await channel.default_exchange.publish(message, routing_key=status_queue)
        return
    connection = await aio_pika.connect(AMQP_URL)
    try:
        own = await connection.channel()
        await own.default_exchange.publish(message, routing_key=status_queue)
    finally:
        await connection.close()


async def complete_on(channel: AbstractChannel, api: Api, accepted: dict[str, Any]) -> Artifact:
    """Play the renderer for a snapshot without waiting: ``stored_fake_pdf`` of its content
    under a key of its task (the API completes a task only with a PDF of its content), then
    its ``completed`` event on ``channel``. Returns the event's artifact."""
    artifact, pdf = stored_fake_pdf(
        api.settings.store_dir,
        accepted["content_hash"],
        key=hashlib.sha256(accepted["task_id"].encode()).hexdigest(),
    )
    await publish_completed(api, accepted, artifact.key, pdf, channel)
    return artifact


async def audit_rows(database_url: str, request_id: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(database_url)
    try:
        return list(
            await conn.fetch("SELECT * FROM audit WHERE request_id = $1 ORDER BY id", request_id)
        )
    finally:
        await conn.close()


async def table_counts(database_url: str) -> dict[str, int]:
    """Rows per table, to prove that a refused request wrote nothing. The outbox is left out:
    the relay deletes its rows as it publishes them, at any moment; every outbox row belongs
    to a task written in the same statement, so ``tasks`` counts the jobs written."""
    tables = ("rooms", "members", "messages", "payloads", "snapshots", "tasks")
    tables += ("chunks", "fragments", "manifests")
    conn = await asyncpg.connect(database_url)
    try:
        return {t: int(await conn.fetchval(f"SELECT count(*) FROM {t}")) for t in tables}
    finally:
        await conn.close()


def request_id() -> str:
    return f"sec-{uuid.uuid4().hex}"


def assert_problem(r: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """A problem document with a stable code, the request id, and nothing leaked."""
    assert r.status_code == status, (r.status_code, r.text[:300])
    assert r.headers["content-type"] == "application/problem+json", r.headers
    body: dict[str, Any] = r.json()
    assert body["status"] == status and body["type"] == f"/problems/{body['code']}"
    assert body["request_id"] == r.headers["x-request-id"]
    if code is not None:
        assert body["code"] == code, body
    assert not LEAKS.search(r.text), r.text
    return body


def refuse_audit_sql(actor: str) -> str:
    """A trigger that makes every audit insert by ``actor`` fail."""
    return f"""
CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'audit refused for test'; END $$;
CREATE TRIGGER refuse_audit BEFORE INSERT ON audit
FOR EACH ROW WHEN (NEW.actor = '{actor}') EXECUTE FUNCTION refuse_audit();
"""


@asynccontextmanager
async def api_refusing_audit(
    database_url: str, queue_prefix: str, store: Path, actor: str
) -> AsyncIterator[Api]:
    """A running API on a database whose audit inserts by ``actor`` fail."""
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(refuse_audit_sql(actor))
    finally:
        await conn.close()
    async with running_api(settings_for(database_url, queue_prefix, store)) as api:
        yield api
