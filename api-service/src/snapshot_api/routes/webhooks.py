"""Webhook secret rotation and the caller's delivery log."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Response

from snapshot_api.deps import ActorDep, Cursor, Limit, PoolDep
from snapshot_api.openapi import problem_responses
from snapshot_api.services import webhooks
from snapshot_api.webhooks.schemas import WebhookDeliveryList, WebhookSecret

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"])


@router.post("/secret", response_model=WebhookSecret, responses=problem_responses(401, 503))
async def rotate_secret(actor: ActorDep, pool: PoolDep, response: Response) -> dict[str, str]:
    """Create or rotate your signing secret. It is shown once; deliveries sent from now on
    (retries included) are signed with it."""
    response.headers["Cache-Control"] = "no-store"
    return {"secret": await webhooks.rotate_secret(pool, actor)}


@router.get(
    "/deliveries",
    response_model=WebhookDeliveryList,
    responses=problem_responses(401, 422, 503),
)
async def list_deliveries(
    actor: ActorDep,
    pool: PoolDep,
    snapshot_id: Annotated[UUID | None, Query(description="only this snapshot's")] = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> dict[str, Any]:
    """Your webhook deliveries, newest first, each with its attempts and their outcomes."""
    return await webhooks.deliveries(pool, actor, snapshot_id, cursor, limit)
