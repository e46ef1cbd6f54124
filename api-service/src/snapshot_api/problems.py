"""Translate every error into an RFC 9457 ``application/problem+json`` answer, in one place."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException

from snapshot_api import denials, errors, openapi
from snapshot_api.db.pool import DATABASE_DOWN
from snapshot_api.metrics import PROBLEMS

log = logging.getLogger(__name__)
PROBLEM_JSON = "application/problem+json"
_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 406: "not_acceptable"}


def problem(
    request: Request,
    status: int,
    code: str,
    title: str,
    detail: str | None = None,
    headers: dict[str, str] | None = None,
    background: BackgroundTask | None = None,
    **extra: Any,
) -> JSONResponse:
    PROBLEMS.labels(code=code).inc()
    body = {
        "type": f"/problems/{code}",
        "title": title,
        "status": status,
        "code": code,
        "detail": detail or title,
        "instance": request.url.path,
        "request_id": getattr(request.state, "request_id", None),
        **extra,
    }
    return JSONResponse(
        body, status_code=status, headers=headers, media_type=PROBLEM_JSON, background=background
    )


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.ApiError)
    denied = isinstance(exc, errors.Unauthorized | errors.Forbidden | errors.NotFound)
    audit_later = denials.record_later(request, exc.status) if denied else None
    return problem(
        request, exc.status, exc.code, exc.title, exc.detail, exc.headers, audit_later, **exc.extra
    )


def _clean_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    return [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
        for e in exc.errors()
    ]


async def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = _clean_errors(exc)
    if any(d["type"] == "json_invalid" for d in details):
        err: errors.ApiError = errors.MalformedRequest("The request body is not valid JSON")
    else:
        first = details[0] if details else {"loc": [], "msg": "invalid"}
        where = ".".join(str(p) for p in first["loc"])
        err = errors.InvalidRequest(f"{where}: {first['msg']}", errors=details)
    return await _api_error(request, err)


async def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    detail = exc.detail if isinstance(exc.detail, str) else None
    return problem(
        request,
        exc.status_code,
        code,
        detail or code.replace("_", " ").capitalize(),
        headers=getattr(exc, "headers", None),
    )


async def _database(request: Request, exc: Exception) -> JSONResponse:
    log.warning("database unavailable: %s", type(exc).__name__)
    return await _api_error(request, errors.Unavailable("The database is not answering"))


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error")
    # Starlette answers this one outside every middleware, so the request id is added here.
    request_id = getattr(request.state, "request_id", None)
    headers = {"X-Request-ID": request_id} if request_id else None
    return problem(request, 500, "internal_error", "Internal server error", headers=headers)


def install(app: FastAPI) -> None:
    """Route every error to a problem document, and document the problems in OpenAPI."""
    openapi.install(app)
    app.add_exception_handler(errors.ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(HTTPException, _http)
    for exc_type in DATABASE_DOWN:
        app.add_exception_handler(exc_type, _database)
    app.add_exception_handler(Exception, _unexpected)
