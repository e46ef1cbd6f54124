"""What the API answers about one task, as the client's unit tests script it (httpx's
``MockTransport``): its ids and a task status body."""

from __future__ import annotations

from typing import Any

TASK = "3c8a1f1e-4b9f-4c1a-8f43-0c1f2b3a4d5e"
SNAP = "9f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b"


def task(status: str, progress: int) -> dict[str, Any]:
    """``GET /api/v1/tasks/{TASK}``'s body in ``status`` at ``progress``."""
    return {
        "task_id": TASK,
        "snapshot_id": SNAP,
        "status": status,
        "progress": progress,
        "phase": status,
        "cache": "miss" if status == "completed" else None,
        "error": None,
        "created_at": "2026-01-02T03:04:05Z",
        "started_at": None,
        "completed_at": None,
    }
