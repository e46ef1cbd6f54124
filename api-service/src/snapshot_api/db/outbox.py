"""The transactional outbox: render jobs written with their snapshot, deleted once published."""

from __future__ import annotations

from uuid import UUID

import asyncpg

INSERT = """
INSERT INTO outbox (task_id, routing_key, body, content_encoding, request_id)
VALUES ($1, $2, $3, $4, $5) RETURNING id
"""
# Taken (deleted) in the relay's transaction, which commits only after every publish was
# confirmed; a failed publish rolls the transaction back and the rows are pending again.
TAKE = """
DELETE FROM outbox WHERE id IN (
  SELECT id FROM outbox WHERE published_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED
)
RETURNING id, task_id, routing_key, body, content_encoding, request_id
"""
BACKLOG = "SELECT count(*) FROM outbox WHERE published_at IS NULL"


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


async def take(conn: asyncpg.Connection, limit: int) -> list[asyncpg.Record]:
    """Up to ``limit`` pending rows, oldest first, deleted within the caller's transaction."""
    return sorted(await conn.fetch(TAKE, limit), key=lambda r: r["id"])


async def backlog(conn: asyncpg.Connection | asyncpg.Pool) -> int:
    return int(await conn.fetchval(BACKLOG))
