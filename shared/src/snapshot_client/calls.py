"""Requests as data and answers from bytes, with no I/O: what ``Client`` sends and reads, for
callers that bring their own connection (the benchmarks time snapshot requests on a raw
keep-alive socket, where an httpx call would add most of a millisecond)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from snapshot_client.errors import problem_from
from snapshot_client.models import SnapshotAccepted

API = "/api/v1"


@dataclass(frozen=True)
class Call:
    """One HTTP request: method, path, JSON body and extra headers (besides the token)."""

    method: str
    path: str
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)


def create_snapshot(
    room_id: str,
    *,
    scope: Mapping[str, Any] | None = None,
    options: Mapping[str, Any] | None = None,
    idempotency_key: str | None = None,
) -> Call:
    """``POST …/snapshots``; an empty body asks for the whole room with default options."""
    body: dict[str, Any] = {}
    if scope:
        body["scope"] = dict(scope)
    if options:
        body["options"] = dict(options)
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    return Call("POST", f"{API}/rooms/{room_id}/snapshots", body, headers)


def read_json(status: int, headers: Mapping[str, str], content: bytes) -> Any:
    """The answer's JSON, or the error an error answer stands for (``errors.ApiProblem``)."""
    if status >= 400:
        raise problem_from(status, httpx.Headers(headers), content)
    return json.loads(content) if content else None


def read_snapshot_accepted(
    status: int, headers: Mapping[str, str], content: bytes
) -> SnapshotAccepted:
    return SnapshotAccepted.from_json(read_json(status, headers, content))
