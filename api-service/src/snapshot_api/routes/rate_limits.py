"""Administrators raise or lower one user's rate limits (403 for everyone else)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request

from snapshot_api.admin_schemas import RateLimitsOut, RateLimitsPut
from snapshot_api.deps import ActorDep, CurrentUser, PoolDep
from snapshot_api.errors import Forbidden
from snapshot_api.openapi import problem_responses
from snapshot_api.services import rate_limit_overrides

router = APIRouter(prefix="/api/v1/admin/users/{user_id}/rate-limits", tags=["admin"])
ADMIN = problem_responses(401, 403, 422, 503)
ADMIN_WRITE = problem_responses(400, 401, 403, 422, 503)  # a body that is not JSON: 400
UserId = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[^\s/\x00-\x1f\x7f-\x9f]+$")]


def _require_admin(user: CurrentUser) -> None:
    if not user.is_admin:
        raise Forbidden("Only administrators may see or change rate limits")


@router.get("", response_model=RateLimitsOut, responses=ADMIN)
async def get_rate_limits(
    user_id: UserId, user: CurrentUser, pool: PoolDep, request: Request
) -> dict[str, Any]:
    """The user's own limits and what applies to them now."""
    _require_admin(user)
    return await rate_limit_overrides.read(pool, request.app.state.rate_limiter, user_id)


@router.put("", response_model=RateLimitsOut, responses=ADMIN_WRITE)
async def put_rate_limits(
    user_id: UserId, body: RateLimitsPut, actor: ActorDep, pool: PoolDep, request: Request
) -> dict[str, Any]:
    """Replace the user's limits (e.g. `{"snapshots": "600/minute"}`; `off`: unlimited; an
    action left out follows SNAPSHOT_API_RATE_LIMITS). Applies at once, audited."""
    _require_admin(actor.user)
    limits = {k: v for k, v in body.model_dump().items() if v is not None}
    return await rate_limit_overrides.replace(
        pool, request.app.state.rate_limiter, actor, user_id, limits
    )
