"""Task status, with ``Retry-After`` while the task is still running."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Response

from snapshot_api.deps import CurrentUser, PoolDep
from snapshot_api.openapi import problem_responses
from snapshot_api.schemas import Task
from snapshot_api.services.tasks import TERMINAL, get_task

router = APIRouter(prefix="/api/v1/tasks", tags=["tasks"])


@router.get("/{task_id}", response_model=Task, responses=problem_responses(401, 404, 422, 503))
async def task_status(
    task_id: UUID, user: CurrentUser, pool: PoolDep, response: Response
) -> dict[str, Any]:
    task = await get_task(pool, user, task_id)
    if task["status"] not in TERMINAL:
        response.headers["Retry-After"] = "1"
    response.headers["Cache-Control"] = "no-store"
    return task
