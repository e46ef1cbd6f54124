"""The API's error tree; each error maps to one RFC 9457 problem in ``problems.py``."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """Base of every error the API answers with a problem document."""

    status = 500
    code = "internal_error"
    title = "Internal server error"
    headers: dict[str, str] = {}

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extra = extra


class MalformedRequest(ApiError):
    """The body is not valid JSON."""

    status, code, title = 400, "malformed_json", "Malformed JSON body"


class Unauthorized(ApiError):
    """Missing, malformed, expired or wrongly signed token."""

    status, code, title = 401, "unauthorized", "Authentication required"
    headers = {"WWW-Authenticate": 'Bearer realm="room-snapshots"'}

    def __init__(self, detail: str | None = None, *, invalid_token: bool = False) -> None:
        super().__init__(detail)
        if invalid_token:  # RFC 6750 §3: a token was sent and refused
            self.headers = {
                "WWW-Authenticate": 'Bearer realm="room-snapshots", error="invalid_token",'
                f' error_description="{self.detail}"'
            }


class Forbidden(ApiError):
    """The caller is known but their role does not allow this."""

    status, code, title = 403, "forbidden", "Not allowed for your role"


class NotFound(ApiError):
    """Missing, or not visible to the caller (no existence oracle)."""

    status, code, title = 404, "not_found", "Not found"


class Conflict(ApiError):
    """The request conflicts with the current state."""

    status, code, title = 409, "conflict", "Conflict"


class NotReady(Conflict):
    """The snapshot's PDF is not rendered yet."""

    code, title = "not_ready", "Snapshot not ready"


class LastOwner(Conflict):
    """A room must keep at least one owner."""

    code, title = "last_owner", "A room needs at least one owner"


class BodyTooLarge(ApiError):
    """The request body exceeds the configured limit."""

    status, code, title = 413, "body_too_large", "Request body too large"


class RangeNotSatisfiable(ApiError):
    """The Range header asks for bytes past the end of the file."""

    status, code, title = 416, "range_not_satisfiable", "Range not satisfiable"

    def __init__(self, size: int) -> None:
        super().__init__(f"The file has {size} bytes", size=size)
        self.headers = {"Content-Range": f"bytes */{size}"}


class SnapshotTooLarge(ApiError):
    """The scope holds more messages than a snapshot may."""

    status, code, title = 413, "snapshot_too_large", "Snapshot scope too large"


class InvalidRequest(ApiError):
    """The body or the parameters fail validation."""

    status, code, title = 422, "validation_error", "Invalid request"


class IdempotencyMismatch(ApiError):
    """An Idempotency-Key was reused with a different body."""

    status, code, title = 422, "idempotency_key_reused", "Idempotency key reused"


class BatchOverRateLimit(ApiError):
    """One request creates more units than the caller's whole rate limit: it never fits."""

    status, code, title = 422, "batch_over_rate_limit", "Batch larger than your rate limit"


class RateLimited(ApiError):
    """The caller's rate limit for this action is spent for now (headers say until when)."""

    status, code, title = 429, "rate_limited", "Too many requests"

    def __init__(self, detail: str, *, headers: dict[str, str], **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.headers = headers


class Unavailable(ApiError):
    """A backend (PostgreSQL, the PDF store) cannot answer right now."""

    status, code, title = 503, "unavailable", "Service temporarily unavailable"
    headers = {"Retry-After": "2"}


class ArtifactMissing(Unavailable):
    """The snapshot's PDF is not in the store."""

    code, title = "artifact_missing", "PDF not available in the store"
