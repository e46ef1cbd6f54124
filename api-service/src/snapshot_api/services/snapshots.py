"""The snapshot use cases: create (freeze the room in scope as a manifest of sealed chunks,
hash it, persist everything in one statement), get, list and delete. Freezing is in
``services/freeze.py``, the render job's envelope in ``services/render_jobs.py``."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
from snapshot_shared.hashing import canonical_json, sha256_hex
from snapshot_shared.messages import DEFAULT_TEMPLATE

from snapshot_api.db import audit, snapshots
from snapshot_api.errors import IdempotencyMismatch, NotFound
from snapshot_api.pagination import decode_time_and_id, encode_cursor
from snapshot_api.schemas import SnapshotRequest
from snapshot_api.services import render_jobs, webhooks
from snapshot_api.services.access import Actor, require_role
from snapshot_api.services.freeze import CREATE_ROLE, freeze
from snapshot_api.services.rate_limits import Quota
from snapshot_api.services.tasks import task_view
from snapshot_api.settings import Settings

MAX_ATTEMPTS = 3  # a concurrent create with the same Idempotency-Key is retried as a replay


@dataclass(frozen=True)
class Created:
    snapshot_id: UUID
    task_id: UUID
    content_hash: str
    status: str
    reused: bool


async def create(
    pool: asyncpg.Pool,
    settings: Settings,
    actor: Actor,
    room_id: UUID,
    request: SnapshotRequest,
    idempotency_key: str | None,
    quota: Quota,
) -> Created:
    """Freeze the room (``freeze``: three reads, none of a sealed chunk's messages), then
    persist snapshot + manifest + frozen fragments + task + outbox row (the job's envelope)
    + audit entry in one atomic statement. No BEGIN/COMMIT; the
    rate limit check is part of that statement (a refusal writes nothing, a failed write
    spends nothing), and an Idempotency-Key replay is answered before any check."""
    request_hash = sha256_hex(canonical_json(_request_doc(room_id, request)))
    for attempt in range(MAX_ATTEMPTS):
        try:
            async with pool.acquire() as conn:
                return await _create(
                    conn, settings, actor, room_id, request, idempotency_key, request_hash, quota
                )
        except asyncpg.UniqueViolationError:  # the same Idempotency-Key, concurrently
            if attempt == MAX_ATTEMPTS - 1:
                raise
        except asyncpg.ForeignKeyViolationError as exc:  # the room was deleted meanwhile
            raise NotFound("Room not found") from exc
    raise AssertionError("unreachable")


async def _create(
    conn: asyncpg.Connection,
    settings: Settings,
    actor: Actor,
    room_id: UUID,
    request: SnapshotRequest,
    idempotency_key: str | None,
    request_hash: str,
    quota: Quota,
) -> Created:
    if idempotency_key is not None:
        existing = await snapshots.by_idempotency_key(conn, actor.user.id, idempotency_key)
        if existing is not None:
            await require_role(conn, room_id, actor.user, CREATE_ROLE)
            if existing["request_hash"] != request_hash:
                raise IdempotencyMismatch(
                    "This Idempotency-Key was used with a different request body"
                )
            return Created(
                existing["id"],
                existing["task_id"],
                existing["content_hash"],
                existing["task_status"],
                reused=True,
            )
    callback_url = None
    if request.callback_url is not None:
        callback_url = await webhooks.check_callback(conn, settings, actor, request.callback_url)
    options = request.options.model_dump(mode="json")
    manifest, count = await freeze(
        conn, actor, room_id, request, settings.snapshot_limits, options, DEFAULT_TEMPLATE
    )
    digest = manifest.content_hash
    snapshot_id = uuid.uuid4()
    job = render_jobs.build_envelope(
        settings,
        snapshot_id,
        digest,
        options,
        DEFAULT_TEMPLATE,
        actor.request_id,
        requested_by=actor.user.id,
    )
    record = snapshots.NewSnapshot(
        id=snapshot_id,
        room_id=room_id,
        requested_by=actor.user.id,
        scope=request.scope.model_dump(mode="json", by_alias=True),
        options=options,
        template=DEFAULT_TEMPLATE,
        content_hash=digest,
        message_count=count,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
        callback_url=callback_url,
    )
    check = quota.args() if quota.active else None
    params = snapshots.CreateParams.of(record, manifest, job, actor.client_addr)
    outcome = await snapshots.create(conn, params, check)
    if outcome is not None:
        await quota.settle(conn, outcome)  # 429 when refused: the statement wrote nothing
    return Created(snapshot_id, job.task_id, digest, "queued", reused=False)


def _request_doc(room_id: UUID, request: SnapshotRequest) -> dict[str, Any]:
    """What an Idempotency-Key is bound to; a request without callback_url hashes as it did
    before the field existed."""
    doc = request.model_dump(mode="json", by_alias=True)
    if doc["callback_url"] is None:
        del doc["callback_url"]
    return {"room_id": str(room_id), **doc}


def links(snapshot_id: UUID, task_id: UUID | None) -> dict[str, str]:
    base = f"/api/v1/snapshots/{snapshot_id}"
    return {
        "task": f"/api/v1/tasks/{task_id}" if task_id else "",
        "snapshot": base,
        "download": f"{base}/download",
    }


def snapshot_view(row: asyncpg.Record) -> dict[str, Any]:
    artifact = None
    if row["status"] == "completed" and row["pdf_sha256"]:
        artifact = {
            "bytes": row["artifact_bytes"],
            "pages": row["artifact_pages"],
            "pdf_sha256": row["pdf_sha256"],
        }
    error = (
        {"code": row["error_code"], "message": row["error_message"]} if row["error_code"] else None
    )
    return {
        "id": row["id"],
        "room_id": row["room_id"],
        "requested_by": row["requested_by"],
        "created_at": row["created_at"],
        "scope": row["scope"],
        "options": row["options"],
        "content_hash": row["content_hash"],
        "message_count": row["message_count"],
        "status": row["status"],
        "artifact": artifact,
        "error": error,
        "task": task_view(row, prefix="task_") if row["task_id"] else None,
        "links": links(row["id"], row["task_id"]),
    }


async def visible_snapshot(
    pool: asyncpg.Pool, actor: Actor, snapshot_id: UUID, minimum: str = "viewer"
) -> asyncpg.Record:
    """The snapshot if the caller may see it with ``minimum`` role; 404/403 otherwise."""
    row = await snapshots.get(pool, snapshot_id)
    if row is None:
        raise NotFound("Snapshot not found")
    try:
        await require_role(pool, row["room_id"], actor.user, minimum)
    except NotFound as exc:
        raise NotFound("Snapshot not found") from exc
    return row


async def get(pool: asyncpg.Pool, actor: Actor, snapshot_id: UUID) -> dict[str, Any]:
    return snapshot_view(await visible_snapshot(pool, actor, snapshot_id))


async def list_page(
    pool: asyncpg.Pool, actor: Actor, room_id: UUID, cursor: str | None, limit: int
) -> dict[str, Any]:
    await require_role(pool, room_id, actor.user, "viewer")
    before = decode_time_and_id(cursor) if cursor else None
    rows = await snapshots.list_page(pool, room_id, before, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1] if rows else None
    return {
        "items": [snapshot_view(r) for r in rows],
        "next_cursor": encode_cursor(last["created_at"].isoformat(), str(last["id"]))
        if more and last
        else None,
    }


async def delete(pool: asyncpg.Pool, actor: Actor, snapshot_id: UUID) -> None:
    row = await visible_snapshot(pool, actor, snapshot_id, minimum="owner")
    async with pool.acquire() as conn, conn.transaction():
        if not await snapshots.soft_delete(conn, snapshot_id):
            raise NotFound("Snapshot not found")
        await audit.record(
            conn, actor.audit, "snapshot.delete", "deleted", row["room_id"], snapshot_id
        )
