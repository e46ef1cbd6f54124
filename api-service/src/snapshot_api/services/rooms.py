"""Rooms and membership."""

from __future__ import annotations

import uuid
from typing import Any
from uuid import UUID

import asyncpg

from snapshot_api.auth import User
from snapshot_api.db import rooms
from snapshot_api.errors import LastOwner, NotFound
from snapshot_api.services.access import require_role


async def create_room(pool: asyncpg.Pool, user: User, name: str) -> dict[str, Any]:
    async with pool.acquire() as conn, conn.transaction():
        row = await rooms.insert_room(conn, uuid.uuid4(), name, user.id)
        await rooms.upsert_member(conn, row["id"], user.id, user.name, "owner")
    return {**dict(row), "member_count": 1, "your_role": "owner"}


async def get_room(pool: asyncpg.Pool, user: User, room_id: UUID) -> dict[str, Any]:
    role = await require_role(pool, room_id, user, "viewer")
    row = await rooms.get_room(pool, room_id)
    if row is None:
        raise NotFound("Room not found")
    return {**dict(row), "your_role": role}


async def put_member(
    pool: asyncpg.Pool,
    user: User,
    room_id: UUID,
    user_id: str,
    role: str,
    display_name: str | None,
) -> tuple[dict[str, Any], bool]:
    """Add or change a member; returns the member and whether it was created."""
    async with pool.acquire() as conn, conn.transaction():
        await require_role(conn, room_id, user, "owner")
        await rooms.lock_room(conn, room_id)
        current = await rooms.get_role(conn, room_id, user_id)
        if current == "owner" and role != "owner" and await rooms.count_owners(conn, room_id) <= 1:
            raise LastOwner("The room's last owner cannot step down; make another owner first")
        row = await rooms.upsert_member(conn, room_id, user_id, display_name, role)
    member = {k: row[k] for k in ("room_id", "user_id", "display_name", "role", "joined_at")}
    return member, bool(row["created"])
