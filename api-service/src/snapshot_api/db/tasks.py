"""Tasks: one render attempt of a snapshot; only ever moves forward."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TypeAlias
from uuid import UUID

import asyncpg

from snapshot_api.db import params

Conn: TypeAlias = asyncpg.Connection | asyncpg.Pool

INSERT = """
INSERT INTO tasks (id, snapshot_id, created_at, deadline) VALUES ($1, $2, $3, $4)
"""
GET_WITH_ROOM = """
SELECT t.id, t.snapshot_id, t.status, t.progress, t.phase, t.cache, t.attempts,
       t.render_ms, t.error_code, t.error_message, t.created_at, t.started_at, t.completed_at,
       t.pieces_done, t.pieces_total, t.event_seq, s.room_id
FROM tasks t JOIN snapshots s ON s.id = t.snapshot_id
WHERE t.id = $1 AND s.deleted_at IS NULL
"""
CONTENT_HASH = """
SELECT s.content_hash FROM tasks t JOIN snapshots s ON s.id = t.snapshot_id
WHERE t.id = $1 AND t.snapshot_id = $2
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


@dataclass(frozen=True)
class TaskEvent:
    """A renderer status event as ``APPLY_EVENT``'s parameters: the task's new ``status``,
    what it records, and the snapshot's artifact or error (``snapshot_error_*``: the
    snapshot's error should the task fail or complete without an artifact)."""

    task_id: UUID
    snapshot_id: UUID
    status: str
    progress: int
    phase: str
    cache: str | None
    attempts: int
    renderer_id: str | None
    render_ms: float | None
    error_code: str | None
    error_message: str | None
    at: dt.datetime
    artifact_key: str | None
    artifact_bytes: int | None
    artifact_pages: int | None
    pdf_sha256: str | None
    snapshot_error_code: str
    snapshot_error_message: str
    pieces_done: int | None
    pieces_total: int | None


E = params.slots(TaskEvent)
# A renderer status event, applied in one statement (so one round trip, atomic without
# BEGIN/COMMIT): the task row is locked, changed only forward (never out of a terminal state,
# never back in progress or in pieces done), and its snapshot follows: rendering, completed
# with its artifact, or failed unless it already has a PDF (a re-render may fail alone).
# While rendering, an event that moves neither the progress nor the piece counts is stale.
# A completed task has all its pieces done.
_PIECES_DONE = f"""CASE WHEN {E.status} = 'completed'
    THEN COALESCE({E.pieces_total}::int, t.pieces_total)
  ELSE LEAST(GREATEST(t.pieces_done, {E.pieces_done}::int),
             COALESCE({E.pieces_total}::int, t.pieces_total)) END"""
_NOTHING_NEW = f"""{E.status} = 'rendering' AND cur.status = 'rendering'
       AND {E.progress}::int <= cur.progress
       AND COALESCE({E.pieces_done}::int <= cur.pieces_done, {E.pieces_done}::int IS NULL)
       AND ({E.pieces_total}::int IS NULL
            OR {E.pieces_total}::int IS NOT DISTINCT FROM cur.pieces_total)"""
APPLY_EVENT = f"""
WITH cur AS (
  SELECT id, snapshot_id, status, progress, pieces_done, pieces_total, created_at
  FROM tasks WHERE id = $1 FOR UPDATE
), upd AS (
  UPDATE tasks t SET status = $3,
         progress = CASE WHEN $3 = 'completed' THEN 100 ELSE GREATEST($4::int, cur.progress) END,
         phase = $5, cache = COALESCE($6, t.cache), attempts = GREATEST(t.attempts, $7),
         renderer_id = COALESCE($8, t.renderer_id), render_ms = COALESCE($9, t.render_ms),
         error_code = $10, error_message = $11, started_at = COALESCE(t.started_at, $12),
         completed_at = CASE WHEN $3 IN ('completed', 'failed') THEN $12 END,
         pieces_done = {_PIECES_DONE}, pieces_total = COALESCE($20::int, t.pieces_total)
  FROM cur
  WHERE t.id = cur.id AND cur.snapshot_id = $2 AND cur.status NOT IN ('completed', 'failed')
    AND NOT ({_NOTHING_NEW})
  RETURNING cur.created_at
), rendering AS (
  UPDATE snapshots SET status = 'rendering'
  WHERE id = $2 AND status = 'queued' AND $3 = 'rendering' AND EXISTS (SELECT 1 FROM upd)
), finished AS (
  UPDATE snapshots SET status = 'completed', artifact_key = $13, artifact_bytes = $14,
         artifact_pages = $15, pdf_sha256 = $16, error_code = NULL, error_message = NULL
  WHERE id = $2 AND $3 = 'completed' AND $13::text IS NOT NULL AND EXISTS (SELECT 1 FROM upd)
), failed AS (
  UPDATE snapshots SET status = 'failed', error_code = $17, error_message = $18
  WHERE id = $2 AND status IN ('queued', 'rendering') AND EXISTS (SELECT 1 FROM upd)
    AND ($3 = 'failed' OR ($3 = 'completed' AND $13::text IS NULL))
)
SELECT EXISTS (SELECT 1 FROM cur WHERE snapshot_id = $2) AS found,
       (SELECT created_at FROM upd) AS created_at
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


async def apply_event(conn: Conn, event: TaskEvent) -> asyncpg.Record:
    """Apply one event (see ``APPLY_EVENT``): ``found`` is false for an unknown task,
    ``created_at`` (the task's) is NULL when the event was stale or a duplicate."""
    row: asyncpg.Record = await conn.fetchrow(APPLY_EVENT, *params.args(event))
    return row


async def content_hash_of(conn: Conn, task_id: UUID, snapshot_id: UUID) -> str | None:
    """The content hash of the task's snapshot, or ``None`` for an unknown task."""
    found: str | None = await conn.fetchval(CONTENT_HASH, task_id, snapshot_id)
    return found


async def open_for_snapshot(conn: asyncpg.Connection, snapshot_id: UUID) -> UUID | None:
    found: UUID | None = await conn.fetchval(OPEN_FOR_SNAPSHOT, snapshot_id)
    return found


async def reap(conn: asyncpg.Connection, limit: int) -> list[asyncpg.Record]:
    """Fail open tasks past their deadline; returns the tasks it failed."""
    return list(await conn.fetch(REAP, limit))


# Serialises re-render requests of one snapshot; an advisory lock takes no row lock, so it
# cannot deadlock with the row locks that status events take.
LOCK_RERENDER = "SELECT pg_advisory_xact_lock(hashtextextended('rerender:' || $1::text, 0))"


async def lock_rerender(conn: asyncpg.Connection, snapshot_id: UUID) -> None:
    """Hold the snapshot's re-render lock until the caller's transaction ends."""
    await conn.execute(LOCK_RERENDER, str(snapshot_id))
