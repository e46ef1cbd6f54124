"""Task status: reading it, and applying renderer status events (forward-only, idempotent)."""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID

import asyncpg
from snapshot_shared.messages import StatusEvent

from snapshot_api.auth import User
from snapshot_api.db import snapshots, tasks
from snapshot_api.errors import NotFound
from snapshot_api.metrics import TASK_LATENCY
from snapshot_api.services.access import require_role

log = logging.getLogger(__name__)
TERMINAL = frozenset({"completed", "failed"})
_STATUS_OF_EVENT = {
    "started": "rendering",
    "progress": "rendering",
    "completed": "completed",
    "failed": "failed",
}


async def get_task(pool: asyncpg.Pool, user: User, task_id: UUID) -> dict[str, Any]:
    row = await tasks.get_with_room(pool, task_id)
    if row is None:
        raise NotFound("Task not found")
    try:
        await require_role(pool, row["room_id"], user, "viewer")
    except NotFound as exc:
        raise NotFound("Task not found") from exc
    return task_view(row)


def task_view(row: Any, prefix: str = "") -> dict[str, Any]:
    def col(name: str) -> Any:
        return row[f"{prefix}{name}"]

    error = None
    if col("error_code"):
        error = {"code": col("error_code"), "message": col("error_message")}
    return {
        "task_id": row["task_id" if prefix else "id"],
        "snapshot_id": row["id" if prefix else "snapshot_id"],
        "status": col("status"),
        "progress": col("progress"),
        "phase": col("phase"),
        "cache": col("cache"),
        "error": error,
        "created_at": col("created_at"),
        "started_at": col("started_at"),
        "completed_at": col("completed_at"),
    }


def _next_state(current: asyncpg.Record, event: StatusEvent) -> dict[str, Any] | None:
    """The task's new columns, or None when the event is stale or a duplicate."""
    status = _STATUS_OF_EVENT[event.event]
    if current["status"] in TERMINAL:
        return None
    if (
        status == "rendering"
        and current["status"] == "rendering"
        and (event.progress <= current["progress"])
    ):
        return None
    terminal = status in TERMINAL
    return {
        "status": status,
        "progress": 100 if status == "completed" else max(event.progress, current["progress"]),
        "phase": event.phase or event.event,
        "cache": event.cache,
        "attempts": event.attempt or 0,
        "renderer_id": event.renderer_id,
        "render_ms": event.render_ms,
        "error_code": event.error.code if event.error else None,
        "error_message": event.error.message if event.error else None,
        "started_at": event.at,
        "completed_at": event.at if terminal else None,
    }


async def apply_event(conn: asyncpg.Connection, event: StatusEvent) -> bool:
    """Apply one status event in one transaction; True when it changed the task."""
    async with conn.transaction():
        current = await tasks.lock(conn, event.task_id)
        if current is None or current["snapshot_id"] != event.snapshot_id:
            log.warning("status event for an unknown task", extra={"task_id": str(event.task_id)})
            return False
        change = _next_state(current, event)
        if change is None:
            return False
        await tasks.update(conn, event.task_id, **change)
        if change["status"] == "rendering":
            await snapshots.mark_rendering(conn, event.snapshot_id)
        elif change["status"] == "completed" and event.artifact is not None:
            await snapshots.finish(
                conn, event.snapshot_id, "completed", **event.artifact.model_dump()
            )
        else:
            await snapshots.fail_unfinished(
                conn,
                [event.snapshot_id],
                change["error_code"] or "render_failed",
                change["error_message"] or "The render failed",
            )
    if change["status"] in TERMINAL:
        latency = (event.at - current["created_at"]).total_seconds()
        TASK_LATENCY.labels(outcome=change["status"], cache=event.cache or "none").observe(
            max(latency, 0.0)
        )
    return True
