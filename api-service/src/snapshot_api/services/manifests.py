"""A snapshot's manifest: its payload as sealed chunks and frozen fragments, and its content
hash (version 2, ``snapshot_shared.hashing.chunked_content_hash``), built from the frozen read
(``db/freeze.py``) without parsing or serializing any sealed message.

The manifest lists the payload's fragments in order: ``lead`` (digests), a run of the room's
sealed chunks (``run``: first and last chunk index), ``trail`` (digests). An unscoped snapshot
is the run of every sealed chunk plus the open chunk's fragment; a scoped one is its edge
fragments around the run of the sealed chunks its scope holds whole.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from snapshot_shared.hashing import (
    CHAIN_SEED,
    chunked_content_hash,
    fold,
    iso_utc,
    payload_frame,
)

from snapshot_api.db.chunks import Fragment, fragments_of
from snapshot_api.db.manifests import Manifest


@dataclass(frozen=True)
class Part:
    """One chunk of the payload: a whole sealed chunk, or a fragment frozen now."""

    chunk: int
    digest: bytes
    size: int
    last_at: dt.datetime
    fragment: Fragment | None = None


@dataclass(frozen=True)
class Sizes:
    messages: int
    weight: int


def sizes(meta: asyncpg.Record, scoped: bool) -> Sizes:
    """What the scope holds, from the chunk records and the edge aggregate alone."""
    if not meta["read_messages"]:
        return Sizes(0, 0)
    if scoped:
        whole = [i for i, w in enumerate(meta["part_whole"]) if w]
        sealed_n = sum(meta["part_messages"][i] for i in whole)
        sealed_w = sum(meta["part_weights"][i] for i in whole)
    else:
        sealed_n, sealed_w = meta["total_messages"] or 0, meta["total_weight"] or 0
    return Sizes(sealed_n + meta["edge_count"], sealed_w + meta["edge_weight"])


def build(
    meta: asyncpg.Record,
    scoped: bool,
    head: Mapping[str, Any],
    rows: Sequence[asyncpg.Record],
    options: Mapping[str, Any],
    template: str,
) -> Manifest:
    """The manifest of the payload ``head`` (without messages; its ``as_of`` is filled in
    here) plus the scope's chunks (``meta``) and the frozen message ``rows``."""
    fragments = fragments_of(rows)
    frozen = [Part(f.chunk, f.digest, len(f.data), f.rows[-1]["created_at"], f) for f in fragments]
    if scoped:
        sealed = [
            Part(c, bytes(d), b, at)
            for c, d, b, at, whole in zip(
                meta["part_chunks"],
                meta["part_digests"],
                meta["part_bytes"],
                meta["part_last_at"],
                meta["part_whole"],
                strict=True,
            )
            if whole
        ]
        parts = sorted(sealed + frozen, key=lambda p: p.chunk)
        lead, run, trail = _layout(parts)
        root, count = fold(p.digest for p in parts), len(parts)
        size = sum(p.size for p in parts)
        last = parts[-1].last_at if parts else None
    else:
        sealed_to = meta["chunk_index"] - 1 if meta["read_messages"] else -1
        if sealed_to >= 0 and meta["chain"] is None:
            raise RuntimeError(f"room {meta['id']} has closed chunks that are not sealed")
        start = bytes(meta["chain"]) if sealed_to >= 0 else CHAIN_SEED
        lead, run, trail = (
            [],
            (0, sealed_to) if sealed_to >= 0 else None,
            [p.digest for p in frozen],
        )
        root, count = fold((p.digest for p in frozen), start), sealed_to + 1 + len(frozen)
        sealed_bytes = meta["total_bytes"] if sealed_to >= 0 else 0
        size = sealed_bytes + sum(p.size for p in frozen)
        last = frozen[-1].last_at if frozen else None
    full_head = {**head, "as_of": iso_utc(last) if last is not None else None}
    before, after = payload_frame(full_head)
    digest = chunked_content_hash(full_head, root, count, options, template)
    total = len(before) + len(after) + size + max(count - 1, 0)
    return Manifest(digest, meta["id"], before, after, lead, run, trail, total, fragments)


def _layout(parts: list[Part]) -> tuple[list[bytes], tuple[int, int] | None, list[bytes]]:
    """Lead digests, the first run of consecutive whole sealed chunks, trail digests."""
    start = next((i for i, p in enumerate(parts) if p.fragment is None), None)
    if start is None:
        return [], None, [p.digest for p in parts]
    end = start
    while (
        end + 1 < len(parts)
        and parts[end + 1].fragment is None
        and parts[end + 1].chunk == parts[end].chunk + 1
    ):
        end += 1
    return (
        [p.digest for p in parts[:start]],
        (parts[start].chunk, parts[end].chunk),
        [p.digest for p in parts[end + 1 :]],
    )
