"""Task status: reading it, and applying renderer status events (forward-only, idempotent).

A ``completed`` event is applied only when the store holds the artifact it names and that
artifact is this snapshot's PDF (``services.artifacts``). Anything else is ignored, counted
and logged, never turned into a failure: whoever can forge a ``completed`` event must not be
able to fail a genuine task either, and the genuine renderer's own event, which follows, still
completes it. (An artifact evicted from the store between its write and the event leaves the
task to the reaper, which fails it at its deadline; the renderer evicts the newest entry last.)
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
from snapshot_shared.messages import StatusEvent

from snapshot_api.auth import User
from snapshot_api.db import tasks
from snapshot_api.errors import NotFound
from snapshot_api.metrics import ARTIFACTS_REFUSED, TASK_LATENCY
from snapshot_api.services import artifacts
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
    return task_view(await get_task_row(pool, user, task_id))


async def get_task_row(pool: asyncpg.Pool, user: User, task_id: UUID) -> asyncpg.Record:
    """The task's row (with its ``event_seq``), if ``user`` may see it; else ``NotFound``."""
    row = await tasks.get_with_room(pool, task_id)
    if row is None:
        raise NotFound("Task not found")
    try:
        await require_role(pool, row["room_id"], user, "viewer")
    except NotFound as exc:
        raise NotFound("Task not found") from exc
    return row


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
        "pieces_done": col("pieces_done"),
        "pieces_total": col("pieces_total"),
    }


async def apply_event(conn: asyncpg.Connection | asyncpg.Pool, event: StatusEvent) -> bool:
    """Apply one status event (one atomic statement); True when it changed the task."""
    status = _STATUS_OF_EVENT[event.event]
    error = event.error
    artifact = event.artifact
    record = tasks.TaskEvent(
        task_id=event.task_id,
        snapshot_id=event.snapshot_id,
        status=status,
        progress=event.progress,
        phase=event.phase or event.event,
        cache=event.cache,
        attempts=event.attempt or 0,
        renderer_id=event.renderer_id,
        render_ms=event.render_ms,
        error_code=error.code if error else None,
        error_message=error.message if error else None,
        at=event.at,
        artifact_key=artifact.key if artifact else None,
        artifact_bytes=artifact.bytes if artifact else None,
        artifact_pages=artifact.pages if artifact else None,
        pdf_sha256=artifact.pdf_sha256 if artifact else None,
        snapshot_error_code=error.code if error else "render_failed",
        snapshot_error_message=error.message if error else "The render failed",
        pieces_done=event.pieces_done,
        pieces_total=event.pieces_total,
    )
    row = await tasks.apply_event(conn, record)
    if not row["found"]:
        log.warning("status event for an unknown task", extra={"task_id": str(event.task_id)})
        return False
    if row["created_at"] is None:  # stale or a duplicate: nothing changed
        return False
    if status in TERMINAL:
        latency = (event.at - row["created_at"]).total_seconds()
        TASK_LATENCY.labels(outcome=status, cache=event.cache or "none").observe(max(latency, 0.0))
    return True


async def accept_event(
    pool: asyncpg.Pool,
    store_dir: Path,
    event: StatusEvent,
    verified: artifacts.VerifiedFiles = artifacts.VERIFIED,
) -> bool:
    """Apply ``event`` unless it is a ``completed`` event whose artifact is not this snapshot's
    PDF in the store (then it is ignored); True when it changed the task."""
    if event.event == "completed":
        reason = await _artifact_refusal(pool, store_dir, verified, event)
        if reason is not None:
            log.warning(
                "completed event ignored: its artifact is not this snapshot's PDF (%s)",
                reason,
                extra={
                    "snapshot_id": str(event.snapshot_id),
                    "artifact_key": event.artifact.key if event.artifact else None,
                    "renderer_id": event.renderer_id,
                },
            )
            return False
    return await apply_event(pool, event)


async def _artifact_refusal(
    pool: asyncpg.Pool, store_dir: Path, verified: artifacts.VerifiedFiles, event: StatusEvent
) -> str | None:
    """Why ``event``'s artifact cannot complete its task, or ``None`` if it can (or the task
    is unknown, which ``apply_event`` reports)."""
    wanted = await tasks.content_hash_of(pool, event.task_id, event.snapshot_id)
    if wanted is None:
        return None
    if event.artifact is None:
        ARTIFACTS_REFUSED.labels(stage="event", reason="none").inc()
        return "none"
    a = event.artifact
    expected = artifacts.Expected(a.key, a.bytes, a.pdf_sha256, wanted)
    return await asyncio.to_thread(artifacts.is_artifact, store_dir, expected, verified)
