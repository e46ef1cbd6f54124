"""Direct reads of the bench's own database: task outcomes, frozen payloads, raw baselines.

Completion is observed here rather than through ``GET /tasks`` polling: a 1 ms poll of one
indexed row costs PostgreSQL far less than the same poll through the API would cost the server
under test, and it sees the status the moment the API's status consumer commits it.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import time
from typing import Any
from uuid import UUID

import asyncpg
from snapshot_api.db import manifests

TERMINAL = ("completed", "failed")
STATUS = "SELECT status FROM tasks WHERE id = $1"
TASKS = """
SELECT t.id, t.status, t.cache, t.render_ms, t.error_code, t.created_at, t.completed_at,
       s.artifact_key, s.artifact_bytes, s.artifact_pages
FROM tasks t JOIN snapshots s ON s.id = t.snapshot_id WHERE t.id = ANY($1::uuid[])
"""
OPEN_TASKS = "SELECT count(*) FROM tasks WHERE status NOT IN ('completed', 'failed')"
DONE_OF = "SELECT count(*) FROM tasks WHERE id = ANY($1::uuid[]) AND status = ANY($2::text[])"
BACKLOG = "SELECT count(*) FROM outbox WHERE published_at IS NULL"
SNAPSHOT = "SELECT content_hash, options, template FROM snapshots WHERE id = $1"
# The bare read of a room's messages in scope (the rows, no JSON): the freeze floor that the
# API's own freeze (snapshot_api.db.freeze, rows aggregated as JSON) is compared against.
FREEZE = """
SELECT id, author_id, author_name, created_at, body, kind, ordinal, chunk FROM messages
WHERE room_id = $1
  AND ($2::timestamptz IS NULL OR created_at >= $2)
  AND ($3::timestamptz IS NULL OR created_at <= $3)
ORDER BY ordinal LIMIT $4
"""


async def _open(dsn: str, patience: float) -> asyncpg.Connection:
    end = time.perf_counter() + patience
    while True:
        try:
            conn = await asyncpg.connect(dsn)
            break
        except (OSError, asyncpg.CannotConnectNowError):
            if time.perf_counter() > end:
                raise
            await asyncio.sleep(0.5)
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    return conn


class Db:
    """One connection that reconnects when a query fails on a broken one: other test suites on
    this machine stop and start PostgreSQL for their fault tests, and a bench should wait that
    out rather than die (the figures of that moment are noisy either way)."""

    def __init__(self, dsn: str, conn: asyncpg.Connection, patience: float) -> None:
        self.dsn, self.conn, self.patience = dsn, conn, patience

    async def _call(self, method: str, *args: Any) -> Any:
        end = time.perf_counter() + self.patience
        while True:
            try:
                return await getattr(self.conn, method)(*args)
            except (
                OSError,
                asyncpg.InterfaceError,
                asyncpg.InternalClientError,
                asyncpg.PostgresConnectionError,
                asyncpg.CannotConnectNowError,
                asyncpg.AdminShutdownError,
            ):
                if time.perf_counter() > end:
                    raise
                self.conn.terminate()
                await asyncio.sleep(0.5)
                self.conn = await _open(self.dsn, self.patience)

    async def fetchval(self, query: str, *args: Any) -> Any:
        return await self._call("fetchval", query, *args)

    async def fetchrow(self, query: str, *args: Any) -> Any:
        return await self._call("fetchrow", query, *args)

    async def fetch(self, query: str, *args: Any) -> list[Any]:
        return list(await self._call("fetch", query, *args))

    async def close(self) -> None:
        await self.conn.close()


async def connect(dsn: str, patience: float = 60.0) -> Db:
    """A reconnecting connection with the jsonb codec."""
    return Db(dsn, await _open(dsn, patience), patience)


async def wait_completed(conn: Db, task_id: UUID, timeout: float) -> float:
    """Poll every millisecond until the task is terminal; the perf_counter time it was seen."""
    end = time.perf_counter() + timeout
    while time.perf_counter() < end:
        if await conn.fetchval(STATUS, task_id) in TERMINAL:
            return time.perf_counter()
        await asyncio.sleep(0.001)
    raise TimeoutError(f"task {task_id} not terminal after {timeout}s")


class TaskEvents:
    """Wake-ups on the API's ``task_events`` NOTIFY (a task row changed), so a wait for one
    task's end costs nothing while the work goes on: on a 2-core machine, a 1 ms poll takes
    CPU from the very renderer whose latency it measures (row 11.1). Listen before the POST."""

    CHANNEL = "task_events"

    def __init__(self, conn: Db) -> None:
        self._conn = conn
        self._changed: dict[str, asyncio.Event] = {}

    async def __aenter__(self) -> TaskEvents:
        self._listening = self._conn.conn  # a reconnect drops the LISTEN: see wait_terminal
        await self._listening.add_listener(self.CHANNEL, self._on_notify)
        return self

    async def __aexit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            await self._listening.remove_listener(self.CHANNEL, self._on_notify)

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        event = self._changed.get(payload.split(":", 1)[0])
        if event is not None:
            event.set()

    async def wait_terminal(self, task_id: UUID, timeout: float) -> float:
        """The perf_counter time the task was seen terminal (read after each change)."""
        changed = self._changed.setdefault(str(task_id), asyncio.Event())
        end = time.perf_counter() + timeout
        try:
            while (status := await self._conn.fetchval(STATUS, task_id)) not in TERMINAL:
                left = end - time.perf_counter()
                if left <= 0:
                    raise TimeoutError(f"task {task_id} not terminal after {timeout}s ({status})")
                with contextlib.suppress(TimeoutError):  # read at least once a second anyway
                    await asyncio.wait_for(changed.wait(), min(left, 1.0))
                changed.clear()
            return time.perf_counter()
        finally:
            del self._changed[str(task_id)]


async def wait_all(conn: Db, task_ids: list[UUID], timeout: float) -> float:
    """Poll every 10 ms until every task is terminal; the perf_counter time it was seen."""
    end = time.perf_counter() + timeout
    while time.perf_counter() < end:
        if await conn.fetchval(DONE_OF, task_ids, list(TERMINAL)) == len(task_ids):
            return time.perf_counter()
        await asyncio.sleep(0.01)
    raise TimeoutError(f"{len(task_ids)} tasks not all terminal after {timeout}s")


async def tasks(conn: Db, task_ids: list[UUID]) -> list[dict[str, Any]]:
    return [dict(r) for r in await conn.fetch(TASKS, task_ids)]


async def open_tasks(conn: Db) -> int:
    return int(await conn.fetchval(OPEN_TASKS))


async def outbox_backlog(conn: Db) -> int:
    return int(await conn.fetchval(BACKLOG))


async def render_input(conn: Db, snapshot_id: UUID) -> tuple[dict[str, Any], dict[str, Any], str]:
    """(payload, options, template) exactly as the renderer receives them for a snapshot."""
    row = await conn.fetchrow(SNAPSHOT, snapshot_id)
    body = await manifests.payload_gzip(conn, row["content_hash"])
    assert body is not None, "a snapshot with a manifest"
    return json.loads(gzip.decompress(body)), row["options"], row["template"]


async def raw_freeze_seconds(conn: Db, room_id: UUID, limit: int) -> float:
    """One bare read of the room's messages, timed (the freeze floor)."""
    started = time.perf_counter()
    await conn.fetch(FREEZE, room_id, None, None, limit)
    return time.perf_counter() - started
