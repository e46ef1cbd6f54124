"""Snapshot creation: freeze the room in scope, hash it, persist everything in one transaction."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
from snapshot_shared.hashing import canonical_json, content_hash, iso_utc, sha256_hex
from snapshot_shared.messages import DEFAULT_TEMPLATE

from snapshot_api.db import audit, messages, payloads, rooms, snapshots
from snapshot_api.errors import IdempotencyMismatch, NotFound, SnapshotTooLarge
from snapshot_api.schemas import SnapshotRequest
from snapshot_api.services import render_jobs
from snapshot_api.services.access import Actor, require_role
from snapshot_api.settings import Settings

MAX_ATTEMPTS = 3  # serialization conflicts between concurrent creates are retried


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
) -> Created:
    """Persist snapshot + task + payload + outbox row + audit entry atomically."""
    request_hash = sha256_hex(canonical_json(_request_doc(room_id, request)))
    for attempt in range(MAX_ATTEMPTS):
        try:
            async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
                return await _create_in_tx(
                    conn, settings, actor, room_id, request, idempotency_key, request_hash
                )
        except (asyncpg.SerializationError, asyncpg.UniqueViolationError):
            if attempt == MAX_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


async def _create_in_tx(
    conn: asyncpg.Connection,
    settings: Settings,
    actor: Actor,
    room_id: UUID,
    request: SnapshotRequest,
    idempotency_key: str | None,
    request_hash: str,
) -> Created:
    await require_role(conn, room_id, actor.user, "editor")
    if idempotency_key is not None:
        existing = await snapshots.by_idempotency_key(conn, actor.user.id, idempotency_key)
        if existing is not None:
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
    payload, count = await freeze(conn, room_id, request, settings.max_snapshot_messages)
    options = request.options.model_dump(mode="json")
    digest = content_hash(payload, options, DEFAULT_TEMPLATE)
    await payloads.store(conn, digest, canonical_json(payload))
    snapshot_id = uuid.uuid4()
    await snapshots.insert(
        conn,
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
    )
    task_id = await render_jobs.enqueue(
        conn, settings, snapshot_id, digest, options, DEFAULT_TEMPLATE, payload, actor.request_id
    )
    await audit.record(conn, actor.audit, "snapshot.create", "accepted", room_id, snapshot_id)
    return Created(snapshot_id, task_id, digest, "queued", reused=False)


async def freeze(
    conn: asyncpg.Connection, room_id: UUID, request: SnapshotRequest, max_messages: int
) -> tuple[dict[str, Any], int]:
    """The room's data within scope, as canonical-ready JSON (timestamps as UTC ``Z``)."""
    room = await rooms.get_room(conn, room_id)
    if room is None:
        raise NotFound("Room not found")
    scope = request.scope
    payload: dict[str, Any] = {
        "room": {
            "id": str(room["id"]),
            "name": room["name"],
            "created_at": iso_utc(room["created_at"]),
        },
        "sections": [s for s in ("members", "messages") if s in scope.sections],
        "members": [],
        "messages": [],
        "as_of": None,
    }
    if "members" in scope.sections:
        payload["members"] = [
            {
                "user_id": m["user_id"],
                "display_name": m["display_name"],
                "role": m["role"],
                "joined_at": iso_utc(m["joined_at"]),
            }
            for m in await rooms.list_members(conn, room_id)
        ]
    count = 0
    if "messages" in scope.sections:
        rows = await messages.freeze(conn, room_id, scope.from_, scope.to, max_messages + 1)
        if len(rows) > max_messages:
            raise SnapshotTooLarge(
                f"The scope holds more than {max_messages} messages, the limit per snapshot;"
                " narrow scope.from/scope.to",
                limit=max_messages,
            )
        payload["messages"] = [
            {
                "id": str(r["id"]),
                "author_id": r["author_id"],
                "author_name": r["author_name"],
                "created_at": iso_utc(r["created_at"]),
                "body": r["body"],
                "kind": r["kind"],
            }
            for r in rows
        ]
        count = len(rows)
        if rows:
            payload["as_of"] = iso_utc(rows[-1]["created_at"])
    return payload, count


def _request_doc(room_id: UUID, request: SnapshotRequest) -> dict[str, Any]:
    return {"room_id": str(room_id), **request.model_dump(mode="json", by_alias=True)}
