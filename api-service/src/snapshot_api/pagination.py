"""Opaque cursors for keyset pagination."""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any
from uuid import UUID

from snapshot_api.errors import InvalidRequest


def encode_cursor(*values: Any) -> str:
    raw = json.dumps(list(values), separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, arity: int) -> list[Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest("cursor: not a cursor this API issued") from exc
    if not isinstance(values, list) or len(values) != arity:
        raise InvalidRequest("cursor: not a cursor this API issued")
    return values


MAX_POSITION = 2**63 - 1  # PostgreSQL bigint


def decode_position(cursor: str) -> int:
    """A one-integer cursor (a ``seq`` or ``id``), refused unless it fits a bigint."""
    (value,) = decode_cursor(cursor, 1)
    if type(value) is not int or not 0 <= value <= MAX_POSITION:
        raise InvalidRequest("cursor: not a cursor this API issued")
    return value


def decode_time_and_id(cursor: str) -> tuple[dt.datetime, UUID]:
    """A ``(created_at, id)`` cursor; the time must carry a zone and be in a sane range."""
    at, key = decode_cursor(cursor, 2)
    try:
        when = dt.datetime.fromisoformat(at)
        ident = UUID(key)
    except (TypeError, ValueError, AttributeError) as exc:
        raise InvalidRequest("cursor: not a cursor this API issued") from exc
    if when.tzinfo is None or not 1970 <= when.year <= 2999:
        raise InvalidRequest("cursor: not a cursor this API issued")
    return when, ident
