"""Snapshot creation: freeze the room in scope, hash it, persist everything in one statement."""

from __future__ import annotations

import gzip
import json
import uuid
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
from snapshot_shared.hashing import canonical_json, content_hash_canonical, sha256_hex
from snapshot_shared.limits import SnapshotLimits
from snapshot_shared.messages import DEFAULT_TEMPLATE

from snapshot_api.db import freeze as freeze_db
from snapshot_api.db import snapshots
from snapshot_api.errors import Forbidden, IdempotencyMismatch, NotFound, SnapshotTooLarge
from snapshot_api.schemas import SnapshotRequest
from snapshot_api.services import render_jobs, webhooks
from snapshot_api.services.access import ROLE_RANK, Actor, require_role
from snapshot_api.services.rate_limits import Quota
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
    """Freeze the room (one read), then persist snapshot + payload + task + outbox row + audit
    entry in one atomic statement. Two round trips on the usual path, no BEGIN/COMMIT; the
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
            await require_role(conn, room_id, actor.user, "editor")
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
    payload, count = await freeze(conn, actor, room_id, request, settings.snapshot_limits)
    canonical = canonical_json(payload)
    options = request.options.model_dump(mode="json")
    digest = content_hash_canonical(canonical, options, DEFAULT_TEMPLATE)
    snapshot_id = uuid.uuid4()
    canonical_gzip = gzip.compress(canonical, 1, mtime=0)  # stored, and reused in the job
    job = render_jobs.build(
        settings,
        snapshot_id,
        digest,
        options,
        DEFAULT_TEMPLATE,
        canonical,
        actor.request_id,
        payload_gzip=canonical_gzip,
        requested_by=actor.user.id,
    )
    record = {
        "id": snapshot_id,
        "room_id": room_id,
        "requested_by": actor.user.id,
        "scope": request.scope.model_dump(mode="json", by_alias=True),
        "options": options,
        "template": DEFAULT_TEMPLATE,
        "content_hash": digest,
        "message_count": count,
        "idempotency_key": idempotency_key,
        "request_hash": request_hash,
        "callback_url": callback_url,
    }
    check = quota.args() if quota.active else None
    outcome = await snapshots.create(
        conn, record, canonical_gzip, len(canonical), job, actor.client_addr, check
    )
    if outcome is not None:
        await quota.settle(conn, outcome)  # 429 when refused: the statement wrote nothing
    return Created(snapshot_id, job["task_id"], digest, "queued", reused=False)


async def freeze(
    conn: asyncpg.Connection,
    actor: Actor,
    room_id: UUID,
    request: SnapshotRequest,
    limits: SnapshotLimits,
) -> tuple[dict[str, Any], int]:
    """The room's data within scope, as canonical-ready JSON (timestamps as UTC ``Z``), after
    checking that the caller may create snapshots in the room (404 / 403 otherwise) and that
    the scope is within ``limits`` (413, decided before any message body is read)."""
    scope = request.scope
    row = await freeze_db.read(
        conn,
        room_id,
        actor.user.id,
        is_admin=actor.user.is_admin,
        members="members" in scope.sections,
        messages="messages" in scope.sections,
        since=scope.from_,
        until=scope.to,
        max_messages=limits.messages,
        max_members=limits.members,
        max_weight=limits.weight,
    )
    if row is None or (row["role"] is None and not actor.user.is_admin):
        raise NotFound("Room not found")
    role = row["role"] or "owner"  # an admin acts as an owner everywhere
    if ROLE_RANK[role] < ROLE_RANK["editor"]:
        raise Forbidden(f"This needs the editor role or higher; you are {role}")
    _check_size(row, limits)
    members = json.loads(row["members"]) if row["members"] is not None else []
    messages = freeze_db.messages_of(row["messages"])
    payload: dict[str, Any] = {
        "room": {"id": row["id"], "name": row["name"], "created_at": row["created_at"]},
        "sections": [s for s in ("members", "messages") if s in scope.sections],
        "members": members,
        "messages": messages,
        "as_of": messages[-1]["created_at"] if messages else None,
    }
    return payload, len(messages)


def _check_size(row: asyncpg.Record, limits: SnapshotLimits) -> None:
    narrow = "; narrow scope.from/scope.to"
    if row["message_count"] > limits.messages:
        raise SnapshotTooLarge(
            f"The scope holds more than {limits.messages} messages, the limit per snapshot"
            + narrow,
            limit=limits.messages,
        )
    if row["message_weight"] > limits.weight:
        raise SnapshotTooLarge(
            f"The scope's messages weigh {row['message_weight']} (bytes + 100 per line break"
            f" + 400 per emoji + 400 per message); the limit per snapshot is {limits.weight}"
            + narrow,
            limit=limits.weight,
            weight=row["message_weight"],
        )
    if row["member_count"] > limits.members:
        raise SnapshotTooLarge(
            f"The room has {row['member_count']} members; a snapshot of its members may hold"
            f" {limits.members}: leave out scope.sections 'members'",
            limit=limits.members,
        )


def _request_doc(room_id: UUID, request: SnapshotRequest) -> dict[str, Any]:
    """What an Idempotency-Key is bound to; a request without callback_url hashes as it did
    before the field existed."""
    doc = request.model_dump(mode="json", by_alias=True)
    if doc["callback_url"] is None:
        del doc["callback_url"]
    return {"room_id": str(room_id), **doc}
