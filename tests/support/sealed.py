"""What a room's sealed chunks must hold, computed here from its messages (not by the API's
code): one row per closed chunk, its fragment gzip-compressed, digests, chain and totals."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import uuid

import asyncpg

SEED = hashlib.sha256(b"room-snapshots chunk chain v2").digest()
MESSAGES = """
SELECT id, author_id, author_name, created_at, body, kind, ordinal, chunk, weight
FROM messages WHERE room_id = $1 ORDER BY ordinal
"""


def _doc(row: asyncpg.Record) -> dict:
    stamp = row["created_at"].astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {
        "id": str(row["id"]),
        "author_id": row["author_id"],
        "author_name": row["author_name"],
        "created_at": stamp,
        "body": row["body"],
        "kind": row["kind"],
        "ordinal": row["ordinal"],
        "chunk": row["chunk"],
    }


def _canonical(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


async def assert_sealed(conn: asyncpg.Connection, room: uuid.UUID | str) -> int:
    """Check the room's ``chunks`` rows against its messages; returns how many are sealed."""
    room = uuid.UUID(str(room))
    open_chunk = await conn.fetchval("SELECT chunk_index FROM rooms WHERE id = $1", room)
    rows = await conn.fetch(MESSAGES, room)
    sealed = {
        r["chunk"]: r for r in await conn.fetch("SELECT * FROM chunks WHERE room_id = $1", room)
    }
    closed = sorted({r["chunk"] for r in rows if r["chunk"] < open_chunk})
    assert sorted(sealed) == closed, "every closed chunk is sealed, the open one is not"
    chain, total = SEED, 0
    for chunk in closed:
        mine = [r for r in rows if r["chunk"] == chunk]
        data = _canonical([_doc(r) for r in mine])[1:-1]
        digest = hashlib.sha256(data).digest()
        chain = hashlib.sha256(chain + digest).digest()
        total += len(mine)
        row = sealed[chunk]
        assert gzip.decompress(row["body_gzip"]) == data
        assert bytes(row["digest"]) == digest and bytes(row["chain"]) == chain
        assert (row["messages"], row["weight"]) == (len(mine), sum(r["weight"] for r in mine))
        assert (row["first_ordinal"], row["last_ordinal"]) == (
            mine[0]["ordinal"],
            mine[-1]["ordinal"],
        )
        assert row["last_at"] == mine[-1]["created_at"] and row["total_messages"] == total
    return len(closed)
