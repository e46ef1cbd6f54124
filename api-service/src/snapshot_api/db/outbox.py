"""The transactional outbox: render jobs written with their snapshot, deleted once published."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import asyncpg

INSERT = """
INSERT INTO outbox (task_id, routing_key, body, content_encoding, request_id)
VALUES ($1, $2, $3, $4, $5) RETURNING id
"""
CLAIM = """
SELECT id, task_id, routing_key, body, content_encoding, request_id FROM outbox
WHERE published_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED
"""
DELETE = "DELETE FROM outbox WHERE id = ANY($1::bigint[])"
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


async def claim(conn: asyncpg.Connection, limit: int) -> list[asyncpg.Record]:
    return list(await conn.fetch(CLAIM, limit))


async def delete(conn: asyncpg.Connection, ids: Sequence[int]) -> None:
    await conn.execute(DELETE, list(ids))


async def backlog(conn: asyncpg.Connection | asyncpg.Pool) -> int:
    return int(await conn.fetchval(BACKLOG))
