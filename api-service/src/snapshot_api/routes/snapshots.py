"""Snapshot requests, listing, reading, deleting and downloading."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Body, Header, Request, Response

from snapshot_api.deps import (
    ActorDep,
    Cursor,
    Limit,
    PoolDep,
    RelayDep,
    SettingsDep,
    SnapshotsQuota,
)
from snapshot_api.metrics import SNAPSHOTS_CREATED
from snapshot_api.openapi import problem_responses, rate_limited
from snapshot_api.responses import PdfFile, check_range
from snapshot_api.schemas import Snapshot, SnapshotAccepted, SnapshotList, SnapshotRequest
from snapshot_api.services import downloads, snapshots

router = APIRouter(prefix="/api/v1", tags=["snapshots"])
IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", min_length=1, max_length=200, pattern=r"^[\x20-\x7e]+$"),
]
READ = problem_responses(401, 404, 422, 503)
PDF = {"application/pdf": {"schema": {"type": "string", "format": "binary"}}}
DOWNLOAD: dict[int | str, dict[str, Any]] = {
    200: {"description": "The PDF", "content": PDF},
    206: {"description": "The requested byte range of the PDF", "content": PDF},
    304: {"description": "Not modified (`If-None-Match` matched the ETag)"},
    **problem_responses(401, 404, 409, 416, 422, 503),
}


@router.post(
    "/rooms/{room_id}/snapshots",
    status_code=202,
    response_model=SnapshotAccepted,
    responses={
        **rate_limited(
            202,
            "Accepted; the task renders it (an Idempotency-Key replay carries"
            " no RateLimit fields: it costs nothing)",
        ),
        **problem_responses(400, 401, 403, 404, 413, 422, 429, 503),
    },
)
async def create_snapshot(
    room_id: UUID,
    actor: ActorDep,
    pool: PoolDep,
    relay: RelayDep,
    settings: SettingsDep,
    quota: SnapshotsQuota,
    response: Response,
    body: Annotated[SnapshotRequest | None, Body()] = None,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    """Counts against the `snapshots` rate limit, except an `Idempotency-Key` replay."""
    created = await snapshots.create(
        pool, settings, actor, room_id, body or SnapshotRequest(), idempotency_key, quota
    )
    if not created.reused:
        relay.kick()
    SNAPSHOTS_CREATED.labels(reused=str(created.reused).lower()).inc()
    links = snapshots.links(created.snapshot_id, created.task_id)
    response.headers["Location"] = links["task"]
    return {
        "snapshot_id": created.snapshot_id,
        "task_id": created.task_id,
        "status": created.status,
        "content_hash": created.content_hash,
        "links": links,
    }


@router.get("/rooms/{room_id}/snapshots", response_model=SnapshotList, responses=READ)
async def list_snapshots(
    room_id: UUID,
    actor: ActorDep,
    pool: PoolDep,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> dict[str, Any]:
    return await snapshots.list_page(pool, actor, room_id, cursor, limit)


@router.get("/snapshots/{snapshot_id}", response_model=Snapshot, responses=READ)
async def get_snapshot(snapshot_id: UUID, actor: ActorDep, pool: PoolDep) -> dict[str, Any]:
    return await snapshots.get(pool, actor, snapshot_id)


@router.delete(
    "/snapshots/{snapshot_id}",
    status_code=204,
    responses=problem_responses(401, 403, 404, 422, 503),
)
async def delete_snapshot(snapshot_id: UUID, actor: ActorDep, pool: PoolDep) -> Response:
    await snapshots.delete(pool, actor, snapshot_id)
    return Response(status_code=204)


@router.get("/snapshots/{snapshot_id}/download", response_class=PdfFile, responses=DOWNLOAD)
async def download(
    snapshot_id: UUID, actor: ActorDep, pool: PoolDep, settings: SettingsDep, request: Request
) -> Response:
    found = await downloads.prepare(pool, settings, actor, snapshot_id)
    headers = {
        "ETag": found.etag,
        "Cache-Control": "private, max-age=0, must-revalidate",
        "Content-Disposition": found.content_disposition,
    }
    try:
        if _matches(request.headers.get("if-none-match"), found.etag):
            found.close()
            return Response(status_code=304, headers=headers)
        check_range(
            request.headers.get("range"), request.headers.get("if-range"), found.etag, found.size
        )
    except BaseException:
        found.close()
        raise
    return PdfFile(found.file, found.stat, headers=headers)


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
    return etag in tags or "*" in tags
