"""Task status, with ``Retry-After`` while the task is still running, and its live events."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Header, Response

from snapshot_api.deps import CurrentUser, PoolDep, SettingsDep, StreamHubDep
from snapshot_api.openapi import problem_responses
from snapshot_api.responses import EventStreamResponse
from snapshot_api.schemas import Task
from snapshot_api.services.task_streams import event_stream, task_reader
from snapshot_api.services.tasks import TERMINAL, get_task, get_task_row

router = APIRouter(prefix="/api/v1/tasks", tags=["tasks"])
LastEventId = Annotated[
    str | None,
    Header(
        alias="Last-Event-ID",
        pattern=r"^[0-9]{1,18}$",
        description="The `id` of the last event received: only newer state is sent",
    ),
]
_EVENTS_DOC = (
    "Server-Sent Events: `progress` (queued or rendering), then `completed` or `failed`, each"
    " with the task (as `GET /api/v1/tasks/{task_id}`) as `data` and an increasing `id`. A"
    " stream starts with the current state, ends after the final event, and sends a comment"
    " line when idle (`SNAPSHOT_API_SSE_HEARTBEAT_SECONDS`)."
)
_EVENTS_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": _EVENTS_DOC,
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    },
    204: {"description": "The task is finished and `Last-Event-ID` already names its final event"},
    **problem_responses(401, 404, 422, 429, 503),
}


@router.get("/{task_id}", response_model=Task, responses=problem_responses(401, 404, 422, 503))
async def task_status(
    task_id: UUID, user: CurrentUser, pool: PoolDep, response: Response
) -> dict[str, Any]:
    task = await get_task(pool, user, task_id)
    if task["status"] not in TERMINAL:
        response.headers["Retry-After"] = "1"
    response.headers["Cache-Control"] = "no-store"
    return task


@router.get(
    "/{task_id}/events",
    status_code=200,
    response_class=EventStreamResponse,
    responses=_EVENTS_RESPONSES,
)
async def task_events(
    task_id: UUID,
    user: CurrentUser,
    pool: PoolDep,
    hub: StreamHubDep,
    settings: SettingsDep,
    last_event_id: LastEventId = None,
) -> Response:
    resume = int(last_event_id) if last_event_id else 0
    row = await get_task_row(pool, user, task_id)
    if row["status"] in TERMINAL and row["event_seq"] <= resume:
        return Response(status_code=204)  # an EventSource stops reconnecting on 204
    sub = hub.open(task_id, user.id, resume)
    body = event_stream(task_reader(pool, user, task_id), sub, hub, settings.sse_heartbeat_seconds)
    return EventStreamResponse(body, hub, sub)
