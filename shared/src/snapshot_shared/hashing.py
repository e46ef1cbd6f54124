"""Canonical JSON and the content hash (DESIGN §3).

Canonical JSON: sorted keys, no spaces, UTF-8, timestamps as UTC ISO-8601 with ``Z``.
The same content therefore always yields the same bytes and the same hash, whatever the
key order or time zone it was built with.

Two formulas, both pure functions of the content:

- version 1 (``content_hash``): SHA-256 over the whole canonical payload. Snapshots and jobs
  created before sealed chunks keep it (a job without ``hash_version`` is version 1).
- version 2 (``chunked_content_hash``): the payload's messages are replaced by a hash chain
  over its chunks (the messages grouped by their ``chunk`` field, in timeline order): each
  chunk's *fragment* (the canonical JSON of its messages, comma-joined, as they stand in the
  payload's ``messages`` array) is hashed, and the digests are folded
  ``root = sha256(root || digest)`` from ``CHAIN_SEED``. The API folds the digests of sealed
  chunks once, when they close (``chunks.chain``), so an unscoped snapshot hashes in O(1);
  the renderer recomputes the root from the payload it receives (``payload_content_hash``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

HASH_VERSION = 1
CHUNKED_HASH_VERSION = 2
CHAIN_SEED = hashlib.sha256(b"room-snapshots chunk chain v2").digest()
_MESSAGES_SLOT = b'"messages":[]'


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


def fragment(messages: Iterable[Mapping[str, Any]]) -> bytes:
    """A chunk's messages as they stand in a canonical payload's ``messages`` array:
    canonical JSON of each, comma-joined (empty for no messages)."""
    return canonical_json(list(messages))[1:-1]


def fragment_digest(fragment_bytes: bytes) -> bytes:
    return hashlib.sha256(fragment_bytes).digest()


def fold(digests: Iterable[bytes], root: bytes = CHAIN_SEED) -> bytes:
    """The hash chain over chunk digests, continued from ``root``."""
    for digest in digests:
        root = hashlib.sha256(root + digest).digest()
    return root


def chunked_content_hash(
    head: Mapping[str, Any], root: bytes, chunks: int, options: Mapping[str, Any], template: str
) -> str:
    """Version 2: SHA-256 of the canonical JSON of ``{hash_version: 2, options, template,
    payload}``, where the payload is ``head`` (the payload without ``messages``) with
    ``messages`` replaced by ``{"chunks": <count>, "root": <hex of the chain>}``."""
    if "messages" in head:
        raise ValueError("head is the payload without its messages")
    doc = {
        "hash_version": CHUNKED_HASH_VERSION,
        "options": options,
        "payload": {**head, "messages": {"chunks": chunks, "root": root.hex()}},
        "template": template,
    }
    return sha256_hex(canonical_json(doc))


def chunk_groups(messages: Iterable[Mapping[str, Any]]) -> list[list[Mapping[str, Any]]]:
    """Consecutive messages of the same ``chunk``, in payload order."""
    groups: list[list[Mapping[str, Any]]] = []
    previous: object = object()
    for message in messages:
        if "chunk" not in message or message["chunk"] is None:
            raise ValueError("a chunked payload's messages carry their chunk")
        if groups and message["chunk"] == previous:
            groups[-1].append(message)
        else:
            groups.append([message])
        previous = message["chunk"]
    return groups


def payload_content_hash(
    payload: Mapping[str, Any], options: Mapping[str, Any], template: str, version: int
) -> str:
    """The content hash of a full payload by formula ``version`` (1 or 2): what the renderer
    checks a job against."""
    if version == HASH_VERSION:
        return content_hash(dict(payload), dict(options), template)
    if version != CHUNKED_HASH_VERSION:
        raise ValueError(f"unknown hash version {version}")
    messages = payload.get("messages", [])
    if not isinstance(messages, list):
        raise ValueError("payload messages must be a list")
    groups = chunk_groups(messages)
    root = fold(fragment_digest(fragment(group)) for group in groups)
    head = {k: v for k, v in payload.items() if k != "messages"}
    return chunked_content_hash(head, root, len(groups), options, template)


def payload_frame(head: Mapping[str, Any]) -> tuple[bytes, bytes]:
    """The canonical payload's bytes before and after its messages' fragments:
    ``before + b",".join(fragments) + after == canonical_json(payload)``."""
    if "messages" in head:
        raise ValueError("head is the payload without its messages")
    before, slot, after = canonical_json({**head, "messages": []}).partition(_MESSAGES_SLOT)
    if not slot or _MESSAGES_SLOT in after:
        raise ValueError("no unique messages slot in the payload")
    return before + b'"messages":[', b"]" + after
