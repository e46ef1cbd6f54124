"""Liveness, readiness and the Prometheus scrape endpoint."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from snapshot_api.metrics import render_latest
from snapshot_api.schemas import Readiness
from snapshot_api.services.summary import refresh_gauges

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> dict[str, Any]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    responses={
        200: {"model": Readiness, "description": "PostgreSQL and RabbitMQ answer"},
        503: {"model": Readiness, "description": "A dependency is down"},
    },
)
async def readyz(request: Request) -> JSONResponse:
    checks = {"database": await _database_ok(request), "broker": request.app.state.broker.is_up}
    ok = all(checks.values())
    body = {
        "status": "ok" if ok else "unavailable",
        "checks": {k: "up" if v else "down" for k, v in checks.items()},
    }
    return JSONResponse(body, status_code=200 if ok else 503)


async def _database_ok(request: Request) -> bool:
    try:
        async with asyncio.timeout(2):
            async with request.app.state.pool.acquire() as conn:
                return bool(await conn.fetchval("SELECT 1") == 1)
    except Exception:  # noqa: BLE001 - any failure means "not ready"
        return False


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    state = request.app.state
    await refresh_gauges(state.pool, state.broker, state.settings.render_jobs_per_user)
    body, content_type = render_latest()
    return Response(body, media_type=content_type)
