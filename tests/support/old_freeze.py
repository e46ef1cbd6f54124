"""The payload the API froze before sealed chunks (main before issue 12, ``db/freeze.py``):
members and messages aggregated as JSON by PostgreSQL, parsed, and serialized canonically.
Kept here as the reference a sealed snapshot's payload must equal byte for byte."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import asyncpg
from snapshot_shared.hashing import canonical_json

_UTC = """to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""
FREEZE = f"""
SELECT r.id::text AS id, r.name, {_UTC.format("r.created_at")} AS created_at,
  (SELECT coalesce(json_agg(json_build_object(
             'user_id', x.user_id, 'display_name', x.display_name, 'role', x.role,
             'joined_at', {_UTC.format("x.joined_at")})
           ORDER BY x.joined_at, x.user_id), '[]')::text
   FROM members x WHERE x.room_id = r.id) AS members,
  (SELECT coalesce(json_agg(y ORDER BY y.ordinal), '[]')::text
   FROM (SELECT id::text AS id, author_id, author_name,
                {_UTC.format("created_at")} AS created_at, body, kind, ordinal, chunk
         FROM messages WHERE room_id = r.id
           AND ($2::timestamptz IS NULL OR created_at >= $2)
           AND ($3::timestamptz IS NULL OR created_at <= $3)) y) AS messages
FROM rooms r WHERE r.id = $1
"""


async def old_payload(
    conn: asyncpg.Connection,
    room: uuid.UUID | str,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> bytes:
    """The canonical payload bytes of an unscoped or scoped snapshot with both sections."""
    row = await conn.fetchrow(FREEZE, uuid.UUID(str(room)), since, until)
    messages: list[dict[str, Any]] = json.loads(row["messages"])
    payload = {
        "room": {"id": row["id"], "name": row["name"], "created_at": row["created_at"]},
        "sections": ["members", "messages"],
        "members": json.loads(row["members"]),
        "messages": messages,
        "as_of": messages[-1]["created_at"] if messages else None,
    }
    return canonical_json(payload)
