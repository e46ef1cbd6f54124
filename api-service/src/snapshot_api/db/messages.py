"""Messages: batch insert and cursor pages (the frozen read of a snapshot is ``db/freeze.py``)."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import asyncpg

INSERT_MANY = """
INSERT INTO messages (id, room_id, author_id, author_name, body, kind)
SELECT m.id, $1, $2, $3, m.body, m.kind
FROM unnest($4::uuid[], $5::text[], $6::text[]) WITH ORDINALITY AS m(id, body, kind, ord)
ORDER BY m.ord
RETURNING seq, id, room_id, author_id, author_name, body, kind, created_at
"""
PAGE = """
SELECT seq, id, author_id, author_name, body, kind, created_at FROM messages
WHERE room_id = $1 AND seq > $2 ORDER BY seq LIMIT $3
"""


async def insert_many(
    conn: asyncpg.Connection,
    room_id: UUID,
    author_id: str,
    author_name: str,
    ids: Sequence[UUID],
    bodies: Sequence[str],
    kinds: Sequence[str],
) -> list[asyncpg.Record]:
    rows = await conn.fetch(INSERT_MANY, room_id, author_id, author_name, ids, bodies, kinds)
    return sorted(rows, key=lambda r: r["seq"])


async def page(
    conn: asyncpg.Connection, room_id: UUID, after: int, limit: int
) -> list[asyncpg.Record]:
    return list(await conn.fetch(PAGE, room_id, after, limit))
