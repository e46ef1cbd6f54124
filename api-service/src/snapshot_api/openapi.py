"""OpenAPI declarations of the problem answers, so the schema says what the API really sends:
every 4xx/5xx is ``application/problem+json`` with the ``Problem`` shape (never FastAPI's
default ``HTTPValidationError``)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI

from snapshot_api.schemas import Problem

PROBLEM_JSON = "application/problem+json"
_REF = "#/components/schemas/{model}"
_DESCRIPTIONS = {
    400: "The body is not valid JSON (`malformed_json`)",
    401: "Missing, malformed, expired or wrongly signed token (`unauthorized`)",
    403: "Your role in the room does not allow this (`forbidden`)",
    404: "Not found, or not visible to you (`not_found`)",
    409: "Conflicts with the current state (`not_ready`, `last_owner`)",
    413: "Body over the size limit (`body_too_large`) or scope over the message limit"
    " (`snapshot_too_large`); `limit` names the limit",
    416: "The Range asks for bytes past the end of the PDF (`range_not_satisfiable`)",
    422: "The body or the parameters fail validation (`validation_error`,"
    " `idempotency_key_reused`, `batch_over_rate_limit`)",
    429: "Your rate limit for this action is spent for now (`rate_limited`); `Retry-After`"
    " says when to try again",
    503: "PostgreSQL or the PDF store cannot answer right now (`unavailable`, `artifact_missing`)",
}
_HEADERS = {
    401: {"WWW-Authenticate": '`Bearer realm="room-snapshots"`, with `error="invalid_token"`'},
    416: {"Content-Range": "`bytes */<size>`"},
    429: {
        "Retry-After": "Whole seconds (at least 1) until this request would be admitted",
        "RateLimit-Policy": '`"<action>";q=<quota>;w=<window seconds>`',
        "RateLimit": '`"<action>";r=<units left>;t=<seconds until the quota is full>`',
    },
    503: {"Retry-After": "Seconds to wait before trying again"},
}


def rate_limited(status: int, description: str) -> dict[int | str, dict[str, Any]]:
    """The success answer of a rate-limited route, with the draft's fields it carries."""
    headers = {
        name: {"description": text, "schema": {"type": "string"}}
        for name, text in _HEADERS[429].items()
        if name != "Retry-After"
    }
    return {status: {"description": description, "headers": headers}}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` entries for the problems a route can answer with."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        response: dict[str, Any] = {
            "description": _DESCRIPTIONS[status],
            "content": {PROBLEM_JSON: {"schema": {"$ref": _REF.format(model="Problem")}}},
        }
        if status in _HEADERS:
            response["headers"] = {
                name: {"description": text, "schema": {"type": "string"}}
                for name, text in _HEADERS[status].items()
            }
        out[status] = response
    return out


def install(app: FastAPI) -> None:
    """Add the ``Problem`` schema to the generated document and drop FastAPI's unused
    validation-error schemas (routes declare their 422 as a problem)."""
    generate = app.openapi

    def with_problems() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            schemas = schema.setdefault("components", {}).setdefault("schemas", {})
            schemas["Problem"] = Problem.model_json_schema(ref_template=_REF)
            for name in ("HTTPValidationError", "ValidationError"):
                if _REF.format(model=name) not in json.dumps(schema["paths"]):
                    schemas.pop(name, None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = with_problems  # type: ignore[method-assign]
