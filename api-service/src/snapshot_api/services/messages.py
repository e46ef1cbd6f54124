"""Posting and paging messages."""

from __future__ import annotations

import uuid
from typing import Any
from uuid import UUID

import asyncpg

from snapshot_api.auth import User
from snapshot_api.db import messages, rooms
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
        created = await messages.insert_many(
            conn,
            room_id,
            user.id,
            author,
            [uuid.uuid4() for _ in items],
            [m.body for m in items],
            [m.kind for m in items],
        )
    return [_message(r) for r in created]


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
