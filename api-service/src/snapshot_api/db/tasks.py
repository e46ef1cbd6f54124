"""Tasks: one render attempt of a snapshot; only ever moves forward."""

from __future__ import annotations

import datetime as dt
from typing import Any, TypeAlias
from uuid import UUID

import asyncpg

Conn: TypeAlias = asyncpg.Connection | asyncpg.Pool

INSERT = """
INSERT INTO tasks (id, snapshot_id, created_at, deadline) VALUES ($1, $2, $3, $4)
"""
GET_WITH_ROOM = """
SELECT t.id, t.snapshot_id, t.status, t.progress, t.phase, t.cache, t.attempts,
       t.render_ms, t.error_code, t.error_message, t.created_at, t.started_at, t.completed_at,
       s.room_id
FROM tasks t JOIN snapshots s ON s.id = t.snapshot_id
WHERE t.id = $1 AND s.deleted_at IS NULL
"""
LOCK = """
SELECT id, snapshot_id, status, progress, phase, created_at FROM tasks WHERE id = $1 FOR UPDATE
"""
OPEN_FOR_SNAPSHOT = """
SELECT id FROM tasks WHERE snapshot_id = $1 AND status IN ('queued', 'rendering')
ORDER BY created_at DESC LIMIT 1 FOR UPDATE
"""
REAP = """
WITH expired AS (
    SELECT id FROM tasks WHERE status IN ('queued', 'rendering') AND deadline < now()
    ORDER BY deadline LIMIT $1 FOR UPDATE SKIP LOCKED
)
UPDATE tasks t SET status = 'failed', phase = 'deadline_exceeded', error_code = 'deadline_exceeded',
       error_message = 'The render did not finish before the task deadline',
       completed_at = now()
FROM expired WHERE t.id = expired.id
RETURNING t.id, t.snapshot_id, t.created_at, t.completed_at
"""
UPDATE = """
UPDATE tasks SET status = $2, progress = $3, phase = $4, cache = COALESCE($5, cache),
       attempts = GREATEST(attempts, $6), renderer_id = COALESCE($7, renderer_id),
       render_ms = COALESCE($8, render_ms), error_code = $9, error_message = $10,
       started_at = COALESCE(started_at, $11), completed_at = $12
WHERE id = $1
"""


async def insert(
    conn: asyncpg.Connection,
    task_id: UUID,
    snapshot_id: UUID,
    created_at: dt.datetime,
    deadline: dt.datetime,
) -> None:
    await conn.execute(INSERT, task_id, snapshot_id, created_at, deadline)


async def get_with_room(conn: Conn, task_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(GET_WITH_ROOM, task_id)


async def lock(conn: asyncpg.Connection, task_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(LOCK, task_id)


async def update(conn: asyncpg.Connection, task_id: UUID, **v: Any) -> None:
    await conn.execute(
        UPDATE,
        task_id,
        v["status"],
        v["progress"],
        v["phase"],
        v.get("cache"),
        v.get("attempts") or 0,
        v.get("renderer_id"),
        v.get("render_ms"),
        v.get("error_code"),
        v.get("error_message"),
        v.get("started_at"),
        v.get("completed_at"),
    )


async def open_for_snapshot(conn: asyncpg.Connection, snapshot_id: UUID) -> UUID | None:
    found: UUID | None = await conn.fetchval(OPEN_FOR_SNAPSHOT, snapshot_id)
    return found


async def reap(conn: asyncpg.Connection, limit: int) -> list[asyncpg.Record]:
    """Fail open tasks past their deadline; returns the tasks it failed."""
    return list(await conn.fetch(REAP, limit))
