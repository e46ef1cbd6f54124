"""Rooms and members."""

from __future__ import annotations

from typing import Any, TypeAlias
from uuid import UUID

import asyncpg

INSERT_ROOM = """
INSERT INTO rooms (id, name, created_by) VALUES ($1, $2, $3)
RETURNING id, name, created_by, created_at
"""
GET_ROOM = """
SELECT r.id, r.name, r.created_by, r.created_at,
       (SELECT count(*) FROM members m WHERE m.room_id = r.id) AS member_count
FROM rooms r WHERE r.id = $1
"""
GET_ROLE = "SELECT role FROM members WHERE room_id = $1 AND user_id = $2"
GET_NAME = "SELECT display_name FROM members WHERE room_id = $1 AND user_id = $2"
UPSERT_MEMBER = """
INSERT INTO members (room_id, user_id, display_name, role)
VALUES ($1, $2, COALESCE(NULLIF($3, ''), $2), $4)
ON CONFLICT (room_id, user_id) DO UPDATE
   SET role = EXCLUDED.role,
       display_name = COALESCE(NULLIF($3, ''), members.display_name)
RETURNING room_id, user_id, display_name, role, joined_at, (xmax = 0) AS created
"""
COUNT_OWNERS = "SELECT count(*) FROM members WHERE room_id = $1 AND role = 'owner'"
LIST_MEMBERS = """
SELECT user_id, display_name, role, joined_at FROM members
WHERE room_id = $1 ORDER BY joined_at, user_id
"""
LOCK_ROOM = "SELECT 1 FROM rooms WHERE id = $1 FOR UPDATE"
DELETE_MEMBER = "DELETE FROM members WHERE room_id = $1 AND user_id = $2 RETURNING role"
# Members, messages and snapshots cascade from the room, tasks from snapshots, outbox rows from
# tasks; payloads are shared by content hash and stay; audit rows keep the room's id.
DELETE_ROOM = "DELETE FROM rooms WHERE id = $1"

Conn: TypeAlias = asyncpg.Connection | asyncpg.Pool


async def insert_room(conn: Conn, room_id: UUID, name: str, created_by: str) -> asyncpg.Record:
    return await conn.fetchrow(INSERT_ROOM, room_id, name, created_by)


async def get_room(conn: Conn, room_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(GET_ROOM, room_id)


async def get_role(conn: Conn, room_id: UUID, user_id: str) -> str | None:
    role: str | None = await conn.fetchval(GET_ROLE, room_id, user_id)
    return role


async def display_name(conn: Conn, room_id: UUID, user_id: str) -> str | None:
    name: str | None = await conn.fetchval(GET_NAME, room_id, user_id)
    return name


async def upsert_member(
    conn: Conn, room_id: UUID, user_id: str, display_name: str | None, role: str
) -> asyncpg.Record:
    """Add or change a member; a new member without a display name is shown by user id, an
    existing one keeps theirs. ``created`` says whether the row is new."""
    return await conn.fetchrow(UPSERT_MEMBER, room_id, user_id, display_name or "", role)


async def count_owners(conn: Conn, room_id: UUID) -> int:
    return int(await conn.fetchval(COUNT_OWNERS, room_id))


async def lock_room(conn: asyncpg.Connection, room_id: UUID) -> None:
    await conn.execute(LOCK_ROOM, room_id)


async def delete_member(conn: asyncpg.Connection, room_id: UUID, user_id: str) -> str | None:
    """Remove a member; returns the role they had, or ``None`` when they were not one."""
    role: str | None = await conn.fetchval(DELETE_MEMBER, room_id, user_id)
    return role


async def delete_room(conn: asyncpg.Connection, room_id: UUID) -> bool:
    return bool(await conn.execute(DELETE_ROOM, room_id) == "DELETE 1")


async def list_members(conn: Conn, room_id: UUID) -> list[asyncpg.Record]:
    return list(await conn.fetch(LIST_MEMBERS, room_id))


def member_dict(row: Any) -> dict[str, Any]:
    return {k: row[k] for k in ("user_id", "display_name", "role", "joined_at")}
