"""Messages: appending to a room's timeline, and cursor pages (the frozen read of a snapshot is
``db/freeze.py``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

import asyncpg
from snapshot_shared.chunking import OpenChunk

# The room's timeline state, locked until the caller's transaction ends: appends to one room
# take turns here, so ordinals stay dense and unique and chunks follow the greedy rule. FOR NO
# KEY UPDATE does not block the FOR KEY SHARE locks that inserts referencing the room take
# (snapshots, members), only other appends and changes of the room row.
LOCK_TIMELINE = """
SELECT next_ordinal, chunk_index, chunk_messages, chunk_weight FROM rooms
WHERE id = $1 FOR NO KEY UPDATE
"""
# The messages with their ordinals and chunks, and the room's new timeline state, in one
# statement. created_at is the statement's start, which comes after the lock was granted, so
# within a room a later ordinal never has an earlier created_at (a transaction's now() would:
# it is when the transaction began, possibly before an append that took the lock first).
APPEND = """
WITH timeline AS (
  UPDATE rooms SET next_ordinal = $7 + cardinality($4::uuid[]), chunk_index = $9,
                   chunk_messages = $10, chunk_weight = $11
  WHERE id = $1
)
INSERT INTO messages (id, room_id, author_id, author_name, body, kind, ordinal, chunk, created_at)
SELECT m.id, $1, $2, $3, m.body, m.kind, $7 + m.ord - 1, m.chunk, statement_timestamp()
FROM unnest($4::uuid[], $5::text[], $6::text[], $8::int[])
     WITH ORDINALITY AS m(id, body, kind, chunk, ord)
ORDER BY m.ord
RETURNING seq, id, room_id, author_id, author_name, body, kind, created_at, ordinal
"""
PAGE = """
SELECT seq, id, author_id, author_name, body, kind, created_at, ordinal FROM messages
WHERE room_id = $1 AND seq > $2 ORDER BY seq LIMIT $3
"""


@dataclass(frozen=True)
class Timeline:
    """Where a room's timeline ends: the ordinal of its next message, and its open chunk."""

    next_ordinal: int
    open_chunk: OpenChunk


@dataclass(frozen=True)
class Append:
    """New messages of one author, in timeline order, with the chunk of each and the room's
    open chunk after them (``snapshot_shared.chunking.append``)."""

    author_id: str
    author_name: str
    ids: Sequence[UUID]
    bodies: Sequence[str]
    kinds: Sequence[str]
    chunks: Sequence[int]
    after: OpenChunk


async def lock_timeline(conn: asyncpg.Connection, room_id: UUID) -> Timeline | None:
    """The room's timeline, locked for an append until the transaction ends; ``None`` when
    the room does not exist."""
    row = await conn.fetchrow(LOCK_TIMELINE, room_id)
    if row is None:
        return None
    chunk = OpenChunk(row["chunk_index"], row["chunk_messages"], row["chunk_weight"])
    return Timeline(row["next_ordinal"], chunk)


async def append(
    conn: asyncpg.Connection, room_id: UUID, timeline: Timeline, new: Append
) -> list[asyncpg.Record]:
    """Insert ``new`` after ``timeline`` (locked by ``lock_timeline`` in this transaction)."""
    rows = await conn.fetch(
        APPEND,
        room_id,
        new.author_id,
        new.author_name,
        new.ids,
        new.bodies,
        new.kinds,
        timeline.next_ordinal,
        new.chunks,
        new.after.index,
        new.after.messages,
        new.after.weight,
    )
    return sorted(rows, key=lambda r: r["ordinal"])


async def page(
    conn: asyncpg.Connection, room_id: UUID, after: int, limit: int
) -> list[asyncpg.Record]:
    return list(await conn.fetch(PAGE, room_id, after, limit))
