"""Content-addressed payloads: the frozen room data, stored once per content hash."""

from __future__ import annotations

import gzip

import asyncpg

INSERT = """
INSERT INTO payloads (content_hash, body_gzip, bytes) VALUES ($1, $2, $3)
ON CONFLICT (content_hash) DO NOTHING
"""
EXISTS = "SELECT 1 FROM payloads WHERE content_hash = $1"
GET = "SELECT body_gzip FROM payloads WHERE content_hash = $1"


async def store(conn: asyncpg.Connection, content_hash: str, canonical: bytes) -> None:
    if await conn.fetchval(EXISTS, content_hash):
        return
    await conn.execute(INSERT, content_hash, gzip.compress(canonical, 5, mtime=0), len(canonical))


async def load(conn: asyncpg.Connection, content_hash: str) -> bytes | None:
    body = await conn.fetchval(GET, content_hash)
    return None if body is None else gzip.decompress(body)
