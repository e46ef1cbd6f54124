"""Canonical JSON and the content hash (DESIGN §3).

Canonical JSON: sorted keys, no spaces, UTF-8, timestamps as UTC ISO-8601 with ``Z``.
The same content therefore always yields the same bytes and the same hash, whatever the
key order or time zone it was built with.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

HASH_VERSION = 1


def iso_utc(value: dt.datetime) -> str:
    """Format an aware datetime as UTC ISO-8601 with microseconds and a ``Z`` suffix."""
    if value.tzinfo is None:
        raise ValueError("naive datetimes are not allowed in canonical content")
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return iso_utc(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    raise TypeError(f"not canonical JSON: {type(value).__name__}")


def canonical_json(value: Any) -> bytes:
    """Serialize ``value`` as canonical JSON bytes."""
    return json.dumps(
        value,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
        default=_default,
    ).encode("utf-8")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def content_hash(payload: dict[str, Any], options: dict[str, Any], template: str) -> str:
    """SHA-256 of the canonical JSON of the room payload, the options and the template name."""
    return sha256_hex(
        canonical_json(
            {
                "hash_version": HASH_VERSION,
                "payload": payload,
                "options": options,
                "template": template,
            }
        )
    )


def render_key(content_hash_hex: str, renderer_fingerprint: str) -> str:
    """The renderer's cache key: content plus everything that shapes the PDF's bytes."""
    return sha256_hex(f"{content_hash_hex}:{renderer_fingerprint}".encode("ascii"))
