"""Rooms and membership: create, read, add or change, remove, delete; changes are audited."""

from __future__ import annotations

import uuid
from typing import Any
from uuid import UUID

import asyncpg

from snapshot_api.auth import User
from snapshot_api.db import audit, rooms
from snapshot_api.errors import Forbidden, LastOwner, NotFound
from snapshot_api.services.access import Actor, require_role
from snapshot_api.services.rate_limits import Quota


async def create_room(pool: asyncpg.Pool, user: User, name: str, quota: Quota) -> dict[str, Any]:
    async with pool.acquire() as conn, conn.transaction():
        await quota.take(conn)
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
    actor: Actor,
    room_id: UUID,
    user_id: str,
    role: str,
    display_name: str | None,
    quota: Quota,
) -> tuple[dict[str, Any], bool]:
    """Add or change a member; returns the member and whether it was created. A new member or
    a changed role is audited with the old and the new role, in the same transaction. Every
    PUT by an owner counts against the caller's `members` rate limit, before the room lock."""
    async with pool.acquire() as conn, conn.transaction():
        await require_role(conn, room_id, actor.user, "owner")
        await quota.take(conn)
        await rooms.lock_room(conn, room_id)
        current = await rooms.get_role(conn, room_id, user_id)
        if current == "owner" and role != "owner" and await rooms.count_owners(conn, room_id) <= 1:
            raise LastOwner("The room's last owner cannot step down; make another owner first")
        row = await rooms.upsert_member(conn, room_id, user_id, display_name, role)
        if current != role:
            await audit.record(
                conn,
                actor.audit,
                "member.role",
                "added" if current is None else "changed",
                room_id,
                subject=user_id,
                detail={"from": current, "to": role},
            )
    member = {k: row[k] for k in ("room_id", "user_id", "display_name", "role", "joined_at")}
    return member, bool(row["created"])


async def remove_member(pool: asyncpg.Pool, actor: Actor, room_id: UUID, user_id: str) -> None:
    """An owner removes anyone, a member removes themself (leaves); the last owner stays."""
    async with pool.acquire() as conn, conn.transaction():
        own_role = await require_role(conn, room_id, actor.user, "viewer")
        if user_id != actor.user.id and own_role != "owner":
            raise Forbidden(f"Removing other members needs the owner role; you are {own_role}")
        await rooms.lock_room(conn, room_id)
        current = await rooms.get_role(conn, room_id, user_id)
        if current is None:
            raise NotFound("Member not found")
        if current == "owner" and await rooms.count_owners(conn, room_id) <= 1:
            raise LastOwner("The room's last owner cannot leave; make another owner first")
        await rooms.delete_member(conn, room_id, user_id)
        await audit.record(
            conn,
            actor.audit,
            "member.remove",
            "left" if user_id == actor.user.id else "removed",
            room_id,
            subject=user_id,
            detail={"from": current, "to": None},
        )


async def delete_room(pool: asyncpg.Pool, actor: Actor, room_id: UUID) -> None:
    """The room and everything in it (members, messages, snapshots, tasks, pending jobs) go at
    once, for everyone; the audit trail keeps the room's id. A render in flight finishes on the
    renderer and its status events then name an unknown task: acknowledged, nothing changes."""
    async with pool.acquire() as conn, conn.transaction():
        await require_role(conn, room_id, actor.user, "owner")
        await rooms.lock_room(conn, room_id)
        if not await rooms.delete_room(conn, room_id):
            raise NotFound("Room not found")
        await audit.record(conn, actor.audit, "room.delete", "deleted", room_id)
