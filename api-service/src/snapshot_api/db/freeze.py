"""The frozen read of a snapshot, in a number of statements that does not grow with the room.

``meta`` (one statement): the caller's role, the room, its member count, and what the scope
holds, from the sealed chunk records (``db/chunks.py``) and the room's open chunk, before any
message is read: message count and weight (the limits are checked on these), and

- unscoped: the last sealed chunk (its hash chain and running totals): O(1) whatever the room;
- scoped (``from``/``to``): the sealed chunks whose time range meets the scope (their digests,
  whether the scope holds them whole), so its interior chunks are shared with every other
  snapshot of the room.

Then, within the limits, ``members`` and ``messages``: the rows of the members and of the
messages the snapshot holds only in part (the scope's edge chunks) or that are not sealed yet
(the open chunk): at most a few chunks of messages, bounded by the chunk rule. Messages are
read below the ``next_ordinal`` ``meta`` saw, so the three statements see one timeline
without a transaction (an append in between only adds later ordinals).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from uuid import UUID

import asyncpg


def _bounds(since: int, until: int) -> tuple[str, str]:
    """The scope's time bounds (parameters ``$since``, ``$until``) as never-NULL values."""
    return (
        f"coalesce(${since}::timestamptz, '-infinity')",
        f"coalesce(${until}::timestamptz, 'infinity')",
    )


_FROM, _TO = _bounds(6, 7)
META = f"""
WITH room AS (
  SELECT r.id, r.name, r.created_at, m.role, r.next_ordinal, r.chunk_index, r.chunk_messages,
         r.chunk_weight,
         $4 AND (m.role = ANY($9::text[]) OR $3) AS read_members,
         $5 AND (m.role = ANY($9::text[]) OR $3) AS read_messages
  FROM rooms r LEFT JOIN members m ON m.room_id = r.id AND m.user_id = $2
  WHERE r.id = $1
), last AS (
  SELECT c.chain, c.total_messages, c.total_weight, c.total_bytes, c.last_ordinal
  FROM chunks c JOIN room r ON c.room_id = r.id AND c.chunk = r.chunk_index - 1
), parts AS (
  SELECT c.chunk, c.digest, c.messages, c.weight, c.bytes, c.first_ordinal, c.last_ordinal,
         c.last_at, c.min_at >= {_FROM} AND c.max_at <= {_TO} AS whole
  FROM chunks c JOIN room r ON c.room_id = r.id
  WHERE $8 AND r.read_messages AND c.max_at >= {_FROM} AND c.min_at <= {_TO}
), ranges AS (
  SELECT first_ordinal AS lo, last_ordinal AS hi FROM parts WHERE NOT whole
  UNION ALL
  SELECT coalesce((SELECT last_ordinal + 1 FROM last), 0), r.next_ordinal - 1
  FROM room r WHERE r.read_messages
), edges AS (  -- unscoped: the open chunk, as the room row counts it
  SELECT count(*) AS n, coalesce(sum(m.weight), 0) AS w
  FROM ranges g CROSS JOIN LATERAL (
    SELECT weight FROM messages m
    WHERE $8 AND m.room_id = $1 AND m.ordinal BETWEEN g.lo AND g.hi
      AND m.created_at >= {_FROM} AND m.created_at <= {_TO}
    OFFSET 0
  ) m
  UNION ALL
  SELECT chunk_messages, chunk_weight FROM room WHERE NOT $8 AND read_messages
)
SELECT r.id, r.name, r.created_at, r.role, r.next_ordinal, r.chunk_index, r.read_members,
  r.read_messages,
  CASE WHEN r.read_members THEN (
    SELECT count(*) FROM members x WHERE x.room_id = r.id) ELSE 0 END AS member_count,
  l.chain, l.total_messages, l.total_weight, l.total_bytes, l.last_ordinal AS sealed_to,
  (SELECT coalesce(sum(n), 0)::bigint FROM edges) AS edge_count,
  (SELECT coalesce(sum(w), 0)::bigint FROM edges) AS edge_weight,
  ARRAY(SELECT chunk FROM parts ORDER BY chunk) AS part_chunks,
  ARRAY(SELECT digest FROM parts ORDER BY chunk) AS part_digests,
  ARRAY(SELECT whole FROM parts ORDER BY chunk) AS part_whole,
  ARRAY(SELECT messages FROM parts ORDER BY chunk) AS part_messages,
  ARRAY(SELECT weight FROM parts ORDER BY chunk) AS part_weights,
  ARRAY(SELECT bytes FROM parts ORDER BY chunk) AS part_bytes,
  ARRAY(SELECT last_at FROM parts ORDER BY chunk) AS part_last_at,
  ARRAY(SELECT lo FROM ranges ORDER BY lo) AS range_lo,
  ARRAY(SELECT hi FROM ranges ORDER BY lo) AS range_hi
FROM room r LEFT JOIN last l ON true
"""
MEMBERS = """
SELECT user_id, display_name, role, joined_at FROM members WHERE room_id = $1
ORDER BY joined_at, user_id
"""
_FROM, _TO = _bounds(5, 6)
# Each range is its own index range scan (LATERAL, OFFSET 0 so that it stays one): a generic
# plan, which knows neither the room nor the ranges, read every message of the room and
# filtered them (100 ms for 100,000 messages once the plan cache went generic).
MESSAGES = f"""
SELECT m.* FROM unnest($2::int[], $3::int[]) AS g(lo, hi) CROSS JOIN LATERAL (
  SELECT id, author_id, author_name, created_at, body, kind, ordinal, chunk, weight
  FROM messages
  WHERE room_id = $1 AND ordinal BETWEEN g.lo AND least(g.hi, $4 - 1)
    AND created_at >= {_FROM} AND created_at <= {_TO}
  OFFSET 0  -- not flattened into a join: one index range scan per range
) m
ORDER BY m.ordinal
"""


async def meta(
    conn: asyncpg.Connection,
    room_id: UUID,
    user_id: str,
    *,
    is_admin: bool,
    readers: Sequence[str],
    members: bool,
    messages: bool,
    since: dt.datetime | None,
    until: dt.datetime | None,
) -> asyncpg.Record | None:
    """The room row with the caller's ``role``, ``member_count`` and the scope's sealed
    chunks and edge sizes (module docstring); None when the room does not exist. Room data
    is read only for a caller whose role is in ``readers`` (or an administrator)."""
    scoped = since is not None or until is not None
    return await conn.fetchrow(
        META, room_id, user_id, is_admin, members, messages, since, until, scoped, list(readers)
    )


async def member_rows(conn: asyncpg.Connection, room_id: UUID) -> list[asyncpg.Record]:
    return list(await conn.fetch(MEMBERS, room_id))


async def message_rows(
    conn: asyncpg.Connection,
    room_id: UUID,
    ranges: tuple[Sequence[int], Sequence[int]],
    since: dt.datetime | None,
    until: dt.datetime | None,
    below: int,
) -> list[asyncpg.Record]:
    """The messages within the scope in the ordinal ranges ``ranges`` (lows, highs), below
    ordinal ``below``, in timeline order."""
    lows, highs = ranges
    if not lows:
        return []
    return list(await conn.fetch(MESSAGES, room_id, lows, highs, below, since, until))
