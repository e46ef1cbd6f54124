"""Job bodies the outbox relay publishes: a row's own body, or, for a row that names a
manifest, its envelope with the manifest's stored payload spliced in (``db/manifests.py``).

This runs in the relay, off the request path: the POST wrote only the envelope and the
manifest. The payload's fragments are spliced as the gzip members they were stored as, so no
message is decompressed, parsed or compressed here (except a body under the gzip threshold,
which goes out as plain JSON and is small by definition).

References instead of bytes (README: Sealed chunks and manifests) were measured and not taken:
the renderer has no database access, and the bytes of the largest room the limits admit
splice in a few milliseconds (tests/bench ``relay_build``).
"""

from __future__ import annotations

import asyncpg
from snapshot_shared.messages import splice_job

from snapshot_api.db import manifests


class JobBodyError(Exception):
    """A row's job body cannot be built (its manifest or a fragment is gone): never will."""


async def body_of(
    conn: asyncpg.Connection, row: asyncpg.Record, gzip_threshold: int | None
) -> tuple[bytes, str | None]:
    """The body and content encoding to publish for outbox ``row``."""
    if row["manifest"] is None:
        return bytes(row["body"]), row["content_encoding"]
    try:
        members = await manifests.payload_members(conn, row["manifest"])
    except LookupError as exc:
        raise JobBodyError(str(exc)) from exc
    if members is None:
        raise JobBodyError(f"manifest {row['manifest']} is missing")
    return splice_job(
        bytes(row["body"]),
        members.before,
        members.middle,
        members.after,
        gzip_threshold,
        members.bytes,
    )
