"""Audit entries for denied attempts (401/403/404) on room resources and admin pages.

The entry is written by a background task that runs after the problem has been sent, so a
denial is exactly as fast as before and its answer is the same whether or not the write
succeeds. The writes share a quarter of the connection pool (a flood of bad tokens must not
starve the requests of members), and at most ``MAX_PENDING`` wait for it; past that, a denial
is logged instead of queued. Past a burst, one client's denials are counted per window
(``denial_windows.py``) instead of written one row each.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from uuid import UUID

from fastapi import Request
from starlette.background import BackgroundTask

from snapshot_api.db import audit, tasks
from snapshot_api.denial_windows import DenialWindows

log = logging.getLogger(__name__)
MAX_PENDING = 1000
OUTCOMES = {401: "denied_unauthenticated", 403: "denied_forbidden", 404: "denied_not_found"}
ROOM = "/api/v1/rooms/{room_id}"
SNAPSHOT = "/api/v1/snapshots/{snapshot_id}"
ACTIONS: dict[tuple[str, str], str] = {
    ("GET", ROOM): "room.read",
    ("DELETE", ROOM): "room.delete",
    ("PUT", ROOM + "/members/{user_id}"): "member.put",
    ("DELETE", ROOM + "/members/{user_id}"): "member.remove",
    ("POST", ROOM + "/messages"): "message.post",
    ("GET", ROOM + "/messages"): "message.list",
    ("POST", ROOM + "/snapshots"): "snapshot.create",
    ("GET", ROOM + "/snapshots"): "snapshot.list",
    ("GET", SNAPSHOT): "snapshot.read",
    ("DELETE", SNAPSHOT): "snapshot.delete",
    ("GET", SNAPSHOT + "/download"): "snapshot.download",
    ("GET", "/api/v1/tasks/{task_id}"): "task.read",
    ("GET", "/api/v1/snapshots/metrics/summary"): "admin.summary",
    ("GET", "/api/v1/audit"): "admin.audit",
    ("GET", "/api/v1/admin/users/{user_id}/rate-limits"): "admin.rate_limits.read",
    ("PUT", "/api/v1/admin/users/{user_id}/rate-limits"): "admin.rate_limits.set",
}


def action_of(request: Request) -> str | None:
    """The audited action of the matched route, or ``None`` for routes outside the table."""
    template = getattr(request.scope.get("route"), "path", None)
    return ACTIONS.get((request.method, template)) if template else None


def _uuid(value: Any) -> UUID | None:
    try:
        return UUID(str(value)) if value is not None else None
    except ValueError:
        return None


def record_later(request: Request, status: int) -> BackgroundTask | None:
    """A task that audits this denied request after the answer, or ``None`` when not audited."""
    action = action_of(request)
    outcome = OUTCOMES.get(status)
    pool = getattr(request.app.state, "pool", None)
    if action is None or outcome is None or pool is None:
        return None
    user = getattr(request.state, "user", None) if status != 401 else None
    ctx = audit.AuditContext(
        actor=user.id if user is not None else None,
        request_id=getattr(request.state, "request_id", None),
        client_addr=request.client.host if request.client else None,
    )
    windows: DenialWindows | None = getattr(request.app.state, "denial_windows", None)
    client = (ctx.client_addr, ctx.actor)
    if windows is not None and not windows.admit(client, action, outcome, pool):
        return None  # counted in the client's window, written as one entry when it ends
    params = request.path_params
    return BackgroundTask(
        _write,
        request,
        ctx,
        action,
        outcome,
        _uuid(params.get("room_id")),
        _uuid(params.get("snapshot_id")),
        _uuid(params.get("task_id")),
    )


async def _write(
    request: Request,
    ctx: audit.AuditContext,
    action: str,
    outcome: str,
    room_id: UUID | None,
    snapshot_id: UUID | None,
    task_id: UUID | None,
) -> None:
    state = request.app.state
    pending = getattr(state, "denials_pending", 0)
    if pending >= MAX_PENDING:
        log.warning("denied attempt not audited (%s): %d audit writes waiting", action, pending)
        return
    if getattr(state, "denials_gate", None) is None:
        state.denials_gate = asyncio.Semaphore(max(1, state.settings.db_pool_max // 4))
    state.denials_pending = pending + 1
    try:
        async with state.denials_gate, state.pool.acquire() as conn:
            if task_id is not None:  # the audit names the task's snapshot and room, if it exists
                task = await tasks.get_with_room(conn, task_id)
                if task is not None:
                    snapshot_id, room_id = task["snapshot_id"], task["room_id"]
            await audit.record(conn, ctx, action, outcome, room_id, snapshot_id)
    except Exception:  # noqa: BLE001 - the answer is sent; a failed write is logged, not raised
        log.exception("could not audit a denied attempt (%s, %s)", action, outcome)
    finally:
        state.denials_pending -= 1
