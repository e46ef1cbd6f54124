"""Posting and paging messages.

A post appends to the room's timeline: under the room's timeline lock (``db.messages``) each
message gets the next ordinal and its chunk (``snapshot_shared.chunking``, from the weights
``snapshot_shared.limits.message_weight`` gives, equal to the stored ``messages.weight``).
The chunks an append closes are sealed in its transaction (``db.chunks``).
"""

from __future__ import annotations

import uuid
from typing import Any
from uuid import UUID

import asyncpg
from snapshot_shared import chunking
from snapshot_shared.limits import message_weight

from snapshot_api.auth import User
from snapshot_api.db import chunks, messages, rooms
from snapshot_api.errors import NotFound
from snapshot_api.pagination import decode_position, encode_cursor
from snapshot_api.schemas import MessageBatch, MessageIn
from snapshot_api.services.access import require_role
from snapshot_api.services.rate_limits import Quota


async def post(
    pool: asyncpg.Pool, user: User, room_id: UUID, body: MessageIn | MessageBatch, quota: Quota
) -> list[dict[str, Any]]:
    items = body.messages if isinstance(body, MessageBatch) else [body]
    async with pool.acquire() as conn, conn.transaction():
        await require_role(conn, room_id, user, "editor")
        await quota.take(conn, len(items))  # a batch of N messages costs N
        author = await rooms.display_name(conn, room_id, user.id) or user.name
        timeline = await messages.lock_timeline(conn, room_id)
        if timeline is None:  # deleted since the role check
            raise NotFound("Room not found")
        bodies = [m.body for m in items]
        chunks, after = chunking.append(timeline.open_chunk, [message_weight(b) for b in bodies])
        new = messages.Append(
            user.id,
            author,
            [uuid.uuid4() for _ in items],
            bodies,
            [m.kind for m in items],
            chunks,
            after,
        )
        created = await messages.append(conn, room_id, timeline, new)
        # The chunks this append closed are sealed now, under the same lock (db/chunks.py).
        await seal(conn, room_id, timeline, after)
    return [_message(r) for r in created]


async def seal(
    conn: asyncpg.Connection, room_id: UUID, before: messages.Timeline, after: chunking.OpenChunk
) -> int:
    """Seal every chunk from the room's open one before the append up to (not including) its
    open one after it."""
    first_ordinal = before.next_ordinal - before.open_chunk.messages
    return await chunks.seal_closed(
        conn, room_id, first_ordinal, before.open_chunk.index, after.index
    )


async def page(
    pool: asyncpg.Pool, user: User, room_id: UUID, cursor: str | None, limit: int
) -> dict[str, Any]:
    await require_role(pool, room_id, user, "viewer")
    after = decode_position(cursor) if cursor else 0
    async with pool.acquire() as conn:
        rows = await messages.page(conn, room_id, after, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "items": [{**_message(r), "room_id": room_id} for r in rows],
        "next_cursor": encode_cursor(rows[-1]["seq"]) if more else None,
    }


def _message(row: asyncpg.Record) -> dict[str, Any]:
    out = dict(row)
    out.pop("seq", None)
    return out
