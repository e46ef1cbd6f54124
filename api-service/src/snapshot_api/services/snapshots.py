"""Snapshot creation: freeze the room in scope as a manifest of sealed chunks, hash it,
persist everything in one statement."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
from snapshot_shared.hashing import canonical_json, iso_utc, sha256_hex
from snapshot_shared.limits import SnapshotLimits
from snapshot_shared.messages import DEFAULT_TEMPLATE

from snapshot_api.db import freeze as freeze_db
from snapshot_api.db import snapshots
from snapshot_api.db.manifests import Manifest
from snapshot_api.errors import IdempotencyMismatch, NotFound, SnapshotTooLarge
from snapshot_api.schemas import SnapshotRequest
from snapshot_api.services import manifests, render_jobs, webhooks
from snapshot_api.services.access import (
    ADMIN_ACTS_AS,
    Actor,
    check_rank,
    require_role,
    roles_at_least,
)
from snapshot_api.services.rate_limits import Quota
from snapshot_api.settings import Settings

CREATE_ROLE = "editor"  # who may create a snapshot of a room
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


async def freeze(
    conn: asyncpg.Connection,
    actor: Actor,
    room_id: UUID,
    request: SnapshotRequest,
    limits: SnapshotLimits,
    options: dict[str, Any],
    template: str,
) -> tuple[Manifest, int]:
    """The manifest of the room's data within scope and its message count, after checking
    that the caller may create snapshots in the room (404 / 403 otherwise) and that the scope
    is within ``limits`` (413, decided from the chunk records before any message is read).
    A constant number of statements whatever the room (``db/freeze.py``)."""
    scope = request.scope
    scoped = scope.from_ is not None or scope.to is not None
    row = await freeze_db.meta(
        conn,
        room_id,
        actor.user.id,
        is_admin=actor.user.is_admin,
        readers=roles_at_least(CREATE_ROLE),
        members="members" in scope.sections,
        messages="messages" in scope.sections,
        since=scope.from_,
        until=scope.to,
    )
    if row is None or (row["role"] is None and not actor.user.is_admin):
        raise NotFound("Room not found")
    check_rank(row["role"] or ADMIN_ACTS_AS, CREATE_ROLE)
    sizes = manifests.sizes(row, scoped)
    _check_size(sizes.messages, sizes.weight, row["member_count"], limits)
    members: list[dict[str, Any]] = []
    if row["read_members"]:
        members = [_member(m) for m in await freeze_db.member_rows(conn, room_id)]
        _check_size(0, 0, len(members), limits)  # joined since the count
    rows = await freeze_db.message_rows(
        conn,
        room_id,
        (row["range_lo"], row["range_hi"]),
        scope.from_,
        scope.to,
        row["next_ordinal"],
    )
    head: dict[str, Any] = {
        "room": {
            "id": str(row["id"]),
            "name": row["name"],
            "created_at": iso_utc(row["created_at"]),
        },
        "sections": [s for s in ("members", "messages") if s in scope.sections],
        "members": members,
    }
    return manifests.build(row, scoped, head, rows, options, template), sizes.messages


def _member(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "user_id": row["user_id"],
        "display_name": row["display_name"],
        "role": row["role"],
        "joined_at": iso_utc(row["joined_at"]),
    }


def _check_size(messages: int, weight: int, members: int, limits: SnapshotLimits) -> None:
    narrow = "; narrow scope.from/scope.to"
    if messages > limits.messages:
        raise SnapshotTooLarge(
            f"The scope holds more than {limits.messages} messages, the limit per snapshot"
            + narrow,
            limit=limits.messages,
        )
    if weight > limits.weight:
        raise SnapshotTooLarge(
            f"The scope's messages weigh {weight} (bytes + 100 per line break"
            f" + 400 per emoji + 400 per message); the limit per snapshot is {limits.weight}"
            + narrow,
            limit=limits.weight,
            weight=weight,
        )
    if members > limits.members:
        raise SnapshotTooLarge(
            f"The room has {members} members; a snapshot of its members may hold"
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
