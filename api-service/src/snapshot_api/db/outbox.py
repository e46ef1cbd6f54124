"""The transactional outbox: render jobs written with their snapshot, deleted once published.

The relay locks a batch of pending rows (``SKIP LOCKED``: other workers take other rows),
publishes them, then settles each row on its own in the same transaction: a confirmed row is
deleted, a failed one has its attempts counted, and one that failed too often (or can never be
published) is parked: it stays, marked, for an operator, and the relay skips it.
"""

from __future__ import annotations

from uuid import UUID

import asyncpg

INSERT = """
INSERT INTO outbox (task_id, routing_key, body, content_encoding, request_id)
VALUES ($1, $2, $3, $4, $5) RETURNING id
"""
LOCK_PENDING = """
SELECT id, task_id, routing_key, body, content_encoding, request_id, attempts
FROM outbox WHERE published_at IS NULL AND parked_at IS NULL
ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED
"""
DELETE = "DELETE FROM outbox WHERE id = ANY($1::bigint[])"
# One failed attempt per row; parked when it reached ``$4`` attempts or can never succeed.
RECORD_FAILURES = """
UPDATE outbox o SET attempts = o.attempts + 1, last_error = f.error,
       parked_at = CASE WHEN f.hopeless OR o.attempts + 1 >= $4 THEN now() END
FROM unnest($1::bigint[], $2::text[], $3::bool[]) AS f(id, error, hopeless), tasks t
WHERE o.id = f.id AND t.id = o.task_id
RETURNING o.id, o.task_id, t.snapshot_id, o.attempts, o.last_error,
          o.parked_at IS NOT NULL AS parked
"""
BACKLOG = "SELECT count(*) FROM outbox WHERE published_at IS NULL AND parked_at IS NULL"
PARKED = "SELECT count(*) FROM outbox WHERE parked_at IS NOT NULL"


async def insert(
    conn: asyncpg.Connection,
    task_id: UUID,
    routing_key: str,
    body: bytes,
    content_encoding: str | None,
    request_id: str | None,
) -> int:
    return int(
        await conn.fetchval(INSERT, task_id, routing_key, body, content_encoding, request_id)
    )


async def lock_pending(conn: asyncpg.Connection, limit: int) -> list[asyncpg.Record]:
    """Up to ``limit`` pending rows, oldest first, locked until the caller's transaction ends."""
    return list(await conn.fetch(LOCK_PENDING, limit))


async def delete(conn: asyncpg.Connection, ids: list[int]) -> None:
    """Forget rows whose publish the broker confirmed."""
    if ids:
        await conn.execute(DELETE, ids)


async def record_failures(
    conn: asyncpg.Connection, failures: dict[int, tuple[str, bool]], max_attempts: int
) -> list[asyncpg.Record]:
    """Count one failed attempt per row (``{id: (error, hopeless)}``); returns the rows, with
    ``parked`` true for those parked now."""
    if not failures:
        return []
    ids = list(failures)
    errors = [failures[i][0][:1000] for i in ids]
    hopeless = [failures[i][1] for i in ids]
    return list(await conn.fetch(RECORD_FAILURES, ids, errors, hopeless, max_attempts))


async def backlog(conn: asyncpg.Connection | asyncpg.Pool) -> int:
    return int(await conn.fetchval(BACKLOG))


async def parked(conn: asyncpg.Connection | asyncpg.Pool) -> int:
    return int(await conn.fetchval(PARKED))
