"""The client's error tree: every failure of a call is one of these, never a bare httpx error.

``ApiProblem`` carries the API's RFC 9457 problem document (``status``, ``code``, ``detail``,
``Retry-After``, ``request_id``); its subclasses say whether asking again can help.
"""

from __future__ import annotations

import json
from typing import Any

import httpx


class SnapshotsError(Exception):
    """Base of every error the client raises."""


class ApiUnreachable(SnapshotsError):
    """No answer from the API: connection refused, DNS failure, timeout, broken connection."""


class ApiProblem(SnapshotsError):
    """The API answered with an error status (an RFC 9457 problem document when it sent one)."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        title: str | None = None,
        retry_after: float | None = None,
        request_id: str | None = None,
        body: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail
        self.title = title
        self.retry_after = retry_after
        self.request_id = request_id
        self.body = body or {}

    def to_dict(self) -> dict[str, Any]:
        """The problem as JSON-ready data (what ``--json`` prints)."""
        return {
            **self.body,
            "status": self.status,
            "code": self.code,
            "detail": self.detail,
            "retry_after": self.retry_after,
            "request_id": self.request_id,
        }


class RequestRefused(ApiProblem):
    """A 4xx answer: the same request will be refused again (bad input, token, role, state)."""


class Unauthorized(RequestRefused):
    """401: the token is missing, malformed, expired or wrongly signed."""


class Forbidden(RequestRefused):
    """403: the caller's role in the room does not allow this."""


class NotFound(RequestRefused):
    """404: no such resource, or not visible to the caller."""


class Conflict(RequestRefused):
    """409: the request conflicts with the current state (``not_ready``, ``last_owner``)."""


class InvalidRequest(RequestRefused):
    """400, 413 or 422: the body, the parameters or the scope are not acceptable."""


class ServerError(ApiProblem):
    """A 5xx answer: the API or one of its backends failed; asking later may succeed."""


_BY_STATUS: dict[int, type[RequestRefused]] = {
    400: InvalidRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: InvalidRequest,
    422: InvalidRequest,
}


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds form; an HTTP date is ignored)."""
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def problem_from(status: int, headers: httpx.Headers, content: bytes) -> ApiProblem:
    """The error for an error answer; tolerant of bodies that are not problem documents."""
    try:
        body = json.loads(content) if content else {}
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    code = str(body.get("code") or f"http_{status}")
    detail = str(
        body.get("detail") or body.get("title") or content[:200].decode("utf-8", "replace")
    )
    if status >= 500:
        kind: type[ApiProblem] = ServerError
    else:
        kind = _BY_STATUS.get(status, RequestRefused)
    return kind(
        status,
        code,
        detail or f"HTTP {status}",
        title=body.get("title"),
        retry_after=_retry_after(headers.get("retry-after")),
        request_id=body.get("request_id") or headers.get("x-request-id"),
        body=body,
    )


class RenderFailed(SnapshotsError):
    """The snapshot's render attempt ended ``failed`` (``code`` and ``message`` from the task)."""

    def __init__(self, task_id: str, code: str, message: str | None) -> None:
        super().__init__(f"render failed: {code}: {message or ''}".rstrip(": "))
        self.task_id = task_id
        self.code = code
        self.message = message


class EventStreamUnusable(SnapshotsError):
    """The task's event stream cannot be followed (not an event stream, unreadable events, or
    dropped more often than allowed); polling the task still can."""


class WaitTimeout(SnapshotsError):
    """The task was still not finished when the caller's wait ran out."""
