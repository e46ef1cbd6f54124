"""Administrator endpoints: the metrics summary and the audit trail (403 for everyone else)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from snapshot_api.db import audit
from snapshot_api.deps import CurrentUser, PoolDep
from snapshot_api.errors import Forbidden
from snapshot_api.pagination import decode_cursor, encode_cursor
from snapshot_api.schemas import AuditList
from snapshot_api.services.summary import summary

router = APIRouter(prefix="/api/v1", tags=["admin"])


def _require_admin(user: CurrentUser) -> None:
    if not user.is_admin:
        raise Forbidden("Only administrators may see this")


@router.get("/snapshots/metrics/summary")
async def metrics_summary(
    user: CurrentUser,
    pool: PoolDep,
    request: Request,
    window: Annotated[int, Query(ge=60, le=30 * 86400)] = 3600,
) -> dict[str, Any]:
    _require_admin(user)
    return await summary(pool, request.app.state.broker, window)


@router.get("/audit", response_model=AuditList)
async def audit_trail(
    user: CurrentUser,
    pool: PoolDep,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    _require_admin(user)
    before = int(decode_cursor(cursor, 1)[0]) if cursor else None
    rows = await audit.page(pool, before, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "items": [dict(r) for r in rows],
        "next_cursor": encode_cursor(rows[-1]["id"]) if more and rows else None,
    }
