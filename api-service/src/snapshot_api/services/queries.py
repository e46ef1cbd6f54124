"""Reading and deleting snapshots."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg

from snapshot_api.db import audit, snapshots
from snapshot_api.errors import NotFound
from snapshot_api.pagination import decode_time_and_id, encode_cursor
from snapshot_api.services.access import Actor, require_role
from snapshot_api.services.tasks import task_view


def links(snapshot_id: UUID, task_id: UUID | None) -> dict[str, str]:
    base = f"/api/v1/snapshots/{snapshot_id}"
    return {
        "task": f"/api/v1/tasks/{task_id}" if task_id else "",
        "snapshot": base,
        "download": f"{base}/download",
    }


def snapshot_view(row: asyncpg.Record) -> dict[str, Any]:
    artifact = None
    if row["status"] == "completed" and row["pdf_sha256"]:
        artifact = {
            "bytes": row["artifact_bytes"],
            "pages": row["artifact_pages"],
            "pdf_sha256": row["pdf_sha256"],
        }
    error = (
        {"code": row["error_code"], "message": row["error_message"]} if row["error_code"] else None
    )
    return {
        "id": row["id"],
        "room_id": row["room_id"],
        "requested_by": row["requested_by"],
        "created_at": row["created_at"],
        "scope": row["scope"],
        "options": row["options"],
        "content_hash": row["content_hash"],
        "message_count": row["message_count"],
        "status": row["status"],
        "artifact": artifact,
        "error": error,
        "task": task_view(row, prefix="task_") if row["task_id"] else None,
        "links": links(row["id"], row["task_id"]),
    }


async def visible_snapshot(
    pool: asyncpg.Pool, actor: Actor, snapshot_id: UUID, minimum: str = "viewer"
) -> asyncpg.Record:
    """The snapshot if the caller may see it with ``minimum`` role; 404/403 otherwise."""
    row = await snapshots.get(pool, snapshot_id)
    if row is None:
        raise NotFound("Snapshot not found")
    try:
        await require_role(pool, row["room_id"], actor.user, minimum)
    except NotFound as exc:
        raise NotFound("Snapshot not found") from exc
    return row


async def get(pool: asyncpg.Pool, actor: Actor, snapshot_id: UUID) -> dict[str, Any]:
    return snapshot_view(await visible_snapshot(pool, actor, snapshot_id))


async def list_page(
    pool: asyncpg.Pool, actor: Actor, room_id: UUID, cursor: str | None, limit: int
) -> dict[str, Any]:
    await require_role(pool, room_id, actor.user, "viewer")
    before = decode_time_and_id(cursor) if cursor else None
    rows = await snapshots.list_page(pool, room_id, before, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1] if rows else None
    return {
        "items": [snapshot_view(r) for r in rows],
        "next_cursor": encode_cursor(last["created_at"].isoformat(), str(last["id"]))
        if more and last
        else None,
    }


async def delete(pool: asyncpg.Pool, actor: Actor, snapshot_id: UUID) -> None:
    row = await visible_snapshot(pool, actor, snapshot_id, minimum="owner")
    async with pool.acquire() as conn, conn.transaction():
        if not await snapshots.soft_delete(conn, snapshot_id):
            raise NotFound("Snapshot not found")
        await audit.record(
            conn, actor.audit, "snapshot.delete", "deleted", row["room_id"], snapshot_id
        )
