"""The frozen read of a snapshot: the caller's role, the room, its members and its messages.

One statement, so one round trip and one consistent view of the room (a single statement
sees one snapshot of the database even under READ COMMITTED). PostgreSQL renders members
and messages as JSON arrays with timestamps already in the canonical UTC ``Z`` form, so the
API parses one string per section instead of building a dict per row. Messages are
aggregated as whole rows (several times faster than ``json_build_object`` per row), in timeline
order, each with its room-level ``ordinal`` and ``chunk`` (migration 0009): a scoped snapshot
carries the same values for its messages as the unscoped one.

Members and messages are read only when the caller may create snapshots (an editor, an
owner or an admin) and the scope asks for them, so a refused request costs one index probe.
Before any body is read, one aggregate over the scope counts the members and the messages and
sums the messages' stored ``weight``; the bodies are read only when the three are within the
limits, so a snapshot over them costs no body transfer or parse.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from uuid import UUID

import asyncpg

_UTC = """to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""

_SCOPED = """
FROM messages
WHERE room_id = r.id
  AND ($6::timestamptz IS NULL OR messages.created_at >= $6)
  AND ($7::timestamptz IS NULL OR messages.created_at <= $7)
ORDER BY ordinal LIMIT $8
"""
FREEZE = f"""
WITH room AS (
  SELECT r.id, r.name, r.created_at, m.role,
         $4 AND (m.role IN ('editor', 'owner') OR $3) AS read_members,
         $5 AND (m.role IN ('editor', 'owner') OR $3) AS read_messages
  FROM rooms r LEFT JOIN members m ON m.room_id = r.id AND m.user_id = $2
  WHERE r.id = $1
), sizes AS (
  SELECT CASE WHEN read_members THEN (
           SELECT count(*) FROM members x WHERE x.room_id = r.id) ELSE 0 END AS member_count,
         s.message_count, s.message_weight
  FROM room r LEFT JOIN LATERAL (
    SELECT count(*) AS message_count, coalesce(sum(weight), 0) AS message_weight
    FROM (SELECT weight {_SCOPED}) w WHERE r.read_messages
  ) s ON true
)
SELECT r.id::text AS id, r.name, {_UTC.format("r.created_at")} AS created_at, r.role,
  z.member_count, z.message_count, z.message_weight,
  CASE WHEN r.read_members AND z.member_count <= $9 THEN (
    SELECT coalesce(json_agg(json_build_object(
             'user_id', x.user_id, 'display_name', x.display_name, 'role', x.role,
             'joined_at', {_UTC.format("x.joined_at")})
           ORDER BY x.joined_at, x.user_id), '[]')::text
    FROM members x WHERE x.room_id = r.id
  ) END AS members,
  CASE WHEN r.read_messages AND z.message_count < $8 AND z.message_weight <= $10 THEN (
    SELECT coalesce(json_agg(y ORDER BY y.ordinal), '[]')::text
    FROM (
      SELECT id::text AS id, author_id, author_name,
             {_UTC.format("created_at")} AS created_at, body, kind, ordinal, chunk
      {_SCOPED}
    ) y
  ) END AS messages
FROM room r CROSS JOIN sizes z
"""


def messages_of(text: str | None) -> list[dict[str, Any]]:
    """The ``messages`` column as payload messages."""
    if text is None:
        return []
    messages: list[dict[str, Any]] = json.loads(text)
    return messages


async def read(
    conn: asyncpg.Connection | asyncpg.Pool,
    room_id: UUID,
    user_id: str,
    *,
    is_admin: bool,
    members: bool,
    messages: bool,
    since: dt.datetime | None,
    until: dt.datetime | None,
    max_messages: int,
    max_members: int,
    max_weight: int,
) -> asyncpg.Record | None:
    """The room row with ``role``, ``member_count``, ``message_count`` (at most
    ``max_messages + 1``) and ``message_weight``, and ``members``/``messages`` as JSON text
    (NULL when not asked for, not allowed, or over a limit); None when the room does not
    exist."""
    return await conn.fetchrow(
        FREEZE,
        room_id,
        user_id,
        is_admin,
        members,
        messages,
        since,
        until,
        max_messages + 1,
        max_members,
        max_weight,
    )
