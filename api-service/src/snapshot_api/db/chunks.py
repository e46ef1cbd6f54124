"""Sealed chunks: a closed chunk's canonical bytes, stored once when it closes.

An append that opens a room's next chunk closes the open one (and, in a big batch, the chunks
it filled meanwhile): ``seal_closed`` reads their messages (at most ``max_messages`` each,
once: amortised O(1) per message), builds each chunk's fragment (``snapshot_shared.hashing``,
the same function the renderer hashes with), and inserts the ``chunks`` rows, in the append's
transaction under the room's timeline lock. ``seal_existing`` does the same for every room at
migration 0011.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
from snapshot_shared.hashing import CHAIN_SEED, fold, fragment, fragment_digest, iso_utc

GZIP_LEVEL = 5  # once per chunk, off the request path; the relay splices these members
_MESSAGE = "id, author_id, author_name, created_at, body, kind, ordinal, chunk, weight"
# The messages of the chunks ``$3`` and after (up to ``$4``, exclusive) from ordinal ``$2``.
CLOSED = f"""
SELECT {_MESSAGE} FROM messages
WHERE room_id = $1 AND ordinal >= $2 AND chunk < $3 ORDER BY ordinal
"""
PREVIOUS = """
SELECT chain, total_messages, total_weight, total_bytes FROM chunks
WHERE room_id = $1 AND chunk = $2
"""
INSERT = """
INSERT INTO chunks (digest, room_id, chunk, body_gzip, bytes, messages, weight, first_ordinal,
                    last_ordinal, min_at, max_at, last_at, chain, total_messages, total_weight,
                    total_bytes)
SELECT d, $1, c, g, b, n, w, fo, lo, mi, ma, la, ch, tm, tw, tb
FROM unnest($2::bytea[], $3::int[], $4::bytea[], $5::int[], $6::int[], $7::bigint[],
            $8::int[], $9::int[], $10::timestamptz[], $11::timestamptz[], $12::timestamptz[],
            $13::bytea[], $14::bigint[], $15::bigint[], $16::bigint[])
     AS s(d, c, g, b, n, w, fo, lo, mi, ma, la, ch, tm, tw, tb)
"""
ALL_CLOSED = f"""
SELECT m.room_id, {", ".join("m." + c for c in _MESSAGE.split(", "))}
FROM messages m JOIN rooms r ON r.id = m.room_id
WHERE m.chunk < r.chunk_index
ORDER BY m.room_id, m.ordinal
"""


def message_doc(row: asyncpg.Record) -> dict[str, Any]:
    """A message row as a payload message (the shape snapshots always carried)."""
    return {
        "id": str(row["id"]),
        "author_id": row["author_id"],
        "author_name": row["author_name"],
        "created_at": iso_utc(row["created_at"]),
        "body": row["body"],
        "kind": row["kind"],
        "ordinal": row["ordinal"],
        "chunk": row["chunk"],
    }


@dataclass(frozen=True)
class Fragment:
    """Some messages of one chunk, in canonical form."""

    chunk: int
    rows: Sequence[asyncpg.Record]
    data: bytes
    digest: bytes

    @classmethod
    def of(cls, rows: Sequence[asyncpg.Record]) -> Fragment:
        data = fragment(message_doc(r) for r in rows)
        return cls(rows[0]["chunk"], rows, data, fragment_digest(data))

    def gzip(self) -> bytes:
        return gzip.compress(self.data, GZIP_LEVEL, mtime=0)


def fragments_of(rows: Iterable[asyncpg.Record]) -> list[Fragment]:
    """The rows (in timeline order) grouped by chunk."""
    groups: list[list[asyncpg.Record]] = []
    for row in rows:
        if groups and groups[-1][0]["chunk"] == row["chunk"]:
            groups[-1].append(row)
        else:
            groups.append([row])
    return [Fragment.of(g) for g in groups]


async def seal_closed(
    conn: asyncpg.Connection, room_id: UUID, first_ordinal: int, first: int, upto: int
) -> int:
    """Seal the room's chunks ``first`` .. ``upto - 1`` (closed by an append in this
    transaction; ``first`` starts at ``first_ordinal``); returns how many were sealed."""
    if upto <= first:
        return 0
    rows = await conn.fetch(CLOSED, room_id, first_ordinal, upto)
    return await _insert(conn, room_id, fragments_of(rows))


async def _insert(conn: asyncpg.Connection, room_id: UUID, parts: list[Fragment]) -> int:
    if not parts:
        return 0
    previous = await conn.fetchrow(PREVIOUS, room_id, parts[0].chunk - 1)
    chain = CHAIN_SEED if previous is None else bytes(previous["chain"])
    messages = 0 if previous is None else previous["total_messages"]
    weight = 0 if previous is None else previous["total_weight"]
    size = 0 if previous is None else previous["total_bytes"]
    columns: list[list[Any]] = [[] for _ in range(15)]
    for part in parts:
        chain = fold([part.digest], chain)
        part_weight = sum(r["weight"] for r in part.rows)
        messages += len(part.rows)
        weight += part_weight
        size += len(part.data)
        times = [r["created_at"] for r in part.rows]
        values = (
            part.digest,
            part.chunk,
            part.gzip(),
            len(part.data),
            len(part.rows),
            part_weight,
            part.rows[0]["ordinal"],
            part.rows[-1]["ordinal"],
            min(times),
            max(times),
            times[-1],
            chain,
            messages,
            weight,
            size,
        )
        for column, value in zip(columns, values, strict=True):
            column.append(value)
    await conn.execute(INSERT, room_id, *columns)
    return len(parts)


async def seal_existing(conn: asyncpg.Connection) -> int:
    """Seal the closed chunks of every room (migration 0011); returns how many were sealed.
    Streams the messages in order, one room at a time."""
    sealed = 0
    room: UUID | None = None
    rows: list[asyncpg.Record] = []
    async for row in conn.cursor(ALL_CLOSED, prefetch=2000):
        if row["room_id"] != room and rows:
            sealed += await _insert(conn, rows[0]["room_id"], fragments_of(rows))
            rows = []
        room = row["room_id"]
        rows.append(row)
    if rows:
        sealed += await _insert(conn, rows[0]["room_id"], fragments_of(rows))
    return sealed
