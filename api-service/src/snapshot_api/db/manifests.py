"""Snapshot manifests (migration 0011): the record a POST writes, and the stored gzip members
of a manifest's payload, in order, for the outbox relay and re-renders.

A payload's canonical bytes are ``before``, its fragments comma-joined, ``after``. Each
fragment is stored gzip-compressed once (``chunks`` or ``fragments``); concatenated gzip
members decompress to the concatenation of their contents (RFC 1952 §2.2), so the payload's
gzip is the members of ``before``, of each fragment with a member of ``,`` between, and of
``after``: no byte of a fragment is decompressed, parsed or compressed again.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from uuid import UUID

import asyncpg

from snapshot_api.db.chunks import Fragment

SEPARATOR = gzip.compress(b",", 1, mtime=0)
# The manifest with the gzip of its fragments: lead and trail in their order (a digest is a
# sealed chunk or a frozen fragment), the run in chunk order, already joined by SEPARATOR.
MEMBERS = """
SELECT m.before, m.after, m.bytes,
  ARRAY(SELECT coalesce(c.body_gzip, f.body_gzip) FROM unnest(m.lead) WITH ORDINALITY AS l(d, i)
        LEFT JOIN chunks c ON c.digest = l.d LEFT JOIN fragments f ON f.digest = l.d
        ORDER BY l.i) AS lead,
  (SELECT string_agg(c.body_gzip, $2::bytea ORDER BY c.chunk) FROM chunks c
   WHERE c.room_id = m.room_id AND c.chunk BETWEEN m.run_from AND m.run_to) AS run,
  ARRAY(SELECT coalesce(c.body_gzip, f.body_gzip) FROM unnest(m.trail) WITH ORDINALITY AS t(d, i)
        LEFT JOIN chunks c ON c.digest = t.d LEFT JOIN fragments f ON f.digest = t.d
        ORDER BY t.i) AS trail
FROM manifests m WHERE m.content_hash = $1
"""
EXISTS = "SELECT 1 FROM manifests WHERE content_hash = $1"


@dataclass(frozen=True)
class Manifest:
    """A snapshot's payload as fragments (``services/manifests.py`` builds it)."""

    content_hash: str
    room_id: UUID
    before: bytes
    after: bytes
    lead: list[bytes]
    run: tuple[int, int] | None
    trail: list[bytes]
    bytes: int
    fragments: list[Fragment]  # the ones frozen by this snapshot, to store


@dataclass(frozen=True)
class PayloadMembers:
    """The gzip members of a stored payload; ``before`` and ``after`` in plain bytes (the job
    builder compresses them with the job's envelope)."""

    before: bytes
    middle: list[bytes]
    after: bytes
    bytes: int


async def exists(conn: asyncpg.Connection | asyncpg.Pool, content_hash: str) -> bool:
    return bool(await conn.fetchval(EXISTS, content_hash))


async def payload_members(
    conn: asyncpg.Connection | asyncpg.Pool, content_hash: str
) -> PayloadMembers | None:
    """The stored payload of ``content_hash`` as gzip members; None without a manifest."""
    row = await conn.fetchrow(MEMBERS, content_hash, SEPARATOR)
    if row is None:
        return None
    parts: list[bytes] = [*row["lead"]]
    if row["run"] is not None:
        parts.append(row["run"])
    parts += row["trail"]
    if any(p is None for p in parts):
        raise LookupError(f"a fragment of manifest {content_hash} is missing")
    middle: list[bytes] = []
    for part in parts:
        if middle:
            middle.append(SEPARATOR)
        middle.append(part)
    return PayloadMembers(bytes(row["before"]), middle, bytes(row["after"]), row["bytes"])


async def payload_gzip(conn: asyncpg.Connection | asyncpg.Pool, content_hash: str) -> bytes | None:
    """The stored payload of ``content_hash`` as one (multi-member) gzip body."""
    members = await payload_members(conn, content_hash)
    if members is None:
        return None
    return b"".join(
        [
            gzip.compress(members.before, 1, mtime=0),
            *members.middle,
            gzip.compress(members.after, 1, mtime=0),
        ]
    )
