"""Freezing a room for a snapshot: the manifest of its data within scope, after the access
and size checks, in a number of statements that does not grow with the room
(``db/freeze.py``)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg
from snapshot_shared.hashing import iso_utc
from snapshot_shared.limits import SnapshotLimits

from snapshot_api.db import freeze as freeze_db
from snapshot_api.db.manifests import Manifest
from snapshot_api.errors import NotFound, SnapshotTooLarge
from snapshot_api.schemas import SnapshotRequest
from snapshot_api.services import manifests
from snapshot_api.services.access import ADMIN_ACTS_AS, Actor, check_rank, roles_at_least

CREATE_ROLE = "editor"  # who may create a snapshot of a room


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
