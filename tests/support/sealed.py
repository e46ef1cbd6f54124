"""What a room's sealed chunks must hold, computed here from its messages (not by the API's
code): one row per closed chunk, its fragment gzip-compressed, digests, chain and totals."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import uuid

import asyncpg
from snapshot_api.db.chunks import seal_closed
from snapshot_shared.chunking import OpenChunk, append
from snapshot_shared.limits import message_weight

BASE = dt.datetime(2024, 5, 1, 9, 0, tzinfo=dt.UTC)
# A room filled behind the API as its appends would have left it (ordinals, chunks, the open
# chunk, one message a second from $7): posting 100,000 messages through the API takes minutes.
FILL = """
WITH added AS (
  INSERT INTO messages (id, room_id, author_id, author_name, body, ordinal, chunk, created_at)
  SELECT gen_random_uuid(), $1, 'olivia', 'Olivia', m.body, m.ord - 1, m.chunk,
         $7::timestamptz + (m.ord - 1) * interval '1 second'
  FROM unnest($2::text[], $3::int[]) WITH ORDINALITY AS m(body, chunk, ord)
)
UPDATE rooms SET next_ordinal = cardinality($2::text[]), chunk_index = $4,
                 chunk_messages = $5, chunk_weight = $6
WHERE id = $1
"""
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


async def fill_sealed(
    conn: asyncpg.Connection, room: uuid.UUID | str, bodies: list[str], base: dt.datetime = BASE
) -> None:
    """Fill an empty room with ``bodies`` behind the API, then seal its closed chunks as the
    appends would have (with the API's own ``seal_closed``)."""
    chunks, end = append(OpenChunk(), [message_weight(b) for b in bodies])
    room_id = uuid.UUID(str(room))
    await conn.execute(FILL, room_id, bodies, chunks, end.index, end.messages, end.weight, base)
    await seal_closed(conn, room_id, 0, 0, end.index)
