"""Administrator endpoints: the metrics summary and the audit trail (403 for everyone else)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from snapshot_api.admin_schemas import AuditList
from snapshot_api.db import audit
from snapshot_api.deps import CurrentUser, Cursor, Limit, PoolDep
from snapshot_api.errors import Forbidden
from snapshot_api.openapi import problem_responses
from snapshot_api.pagination import decode_position, encode_cursor
from snapshot_api.services.summary import parse_window, summary

router = APIRouter(prefix="/api/v1", tags=["admin"])
ADMIN = problem_responses(401, 403, 422, 503)


def _require_admin(user: CurrentUser) -> None:
    if not user.is_admin:
        raise Forbidden("Only administrators may see this")


@router.get("/snapshots/metrics/summary", responses=ADMIN)
async def metrics_summary(
    user: CurrentUser,
    pool: PoolDep,
    request: Request,
    window: Annotated[
        str,
        Query(max_length=12, description="seconds, or a duration such as 15m, 1h, 7d (1 min-30 d)"),
    ] = "3600",
) -> dict[str, Any]:
    _require_admin(user)
    per_user = request.app.state.settings.render_jobs_per_user
    return await summary(pool, request.app.state.broker, parse_window(window), per_user)


@router.get("/audit", response_model=AuditList, responses=ADMIN)
async def audit_trail(
    user: CurrentUser,
    pool: PoolDep,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> dict[str, Any]:
    _require_admin(user)
    before = decode_position(cursor) if cursor else None
    rows = await audit.page(pool, before, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "items": [dict(r) for r in rows],
        "next_cursor": encode_cursor(rows[-1]["id"]) if more and rows else None,
    }
