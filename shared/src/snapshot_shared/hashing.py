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
    utc = value.astimezone(dt.UTC).replace(tzinfo=None)
    return utc.isoformat(timespec="microseconds") + "Z"  # isoformat is ~4x faster than strftime


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
    return content_hash_canonical(canonical_json(payload), options, template)


def content_hash_canonical(canonical_payload: bytes, options: dict[str, Any], template: str) -> str:
    """``content_hash`` for a payload already in canonical JSON, without serializing it again.

    The hashed document is ``{"hash_version","options","payload","template"}``: its keys are
    already in sorted order, so splicing the canonical parts yields the canonical whole.
    """
    digest = hashlib.sha256(b'{"hash_version":%d,"options":' % HASH_VERSION)
    digest.update(canonical_json(options))
    digest.update(b',"payload":')
    digest.update(canonical_payload)
    digest.update(b',"template":')
    digest.update(canonical_json(template))
    digest.update(b"}")
    return digest.hexdigest()


def render_key(content_hash_hex: str, renderer_fingerprint: str) -> str:
    """The renderer's cache key: content plus everything that shapes the PDF's bytes."""
    return sha256_hex(f"{content_hash_hex}:{renderer_fingerprint}".encode("ascii"))
