"""Snapshots (with their latest task) and idempotency look-ups."""

from __future__ import annotations

import datetime as dt
from typing import Any, TypeAlias
from uuid import UUID

import asyncpg

from snapshot_api.db import rate_limits
from snapshot_api.db.manifests import Manifest

Conn: TypeAlias = asyncpg.Connection | asyncpg.Pool

# A new snapshot with its manifest (stored once per content hash) and the fragments it froze
# (once per digest), its task, outbox row and audit entry: one statement, so one round trip
# and atomic without BEGIN/COMMIT. Foreign keys between the sibling inserts are checked at the
# end of the statement, when all of them are in place. The outbox row holds the job's envelope
# and names the manifest: the relay builds the body (messaging/job_bodies.py). It counts
# against its user's fair share of renders (README: Fair rendering) unless the content has a
# completed snapshot already: then it is most likely a cache hit, and goes out at once.
_OUTBOX_USER = """CASE WHEN EXISTS (SELECT 1 FROM snapshots WHERE content_hash = $7
                           AND status = 'completed') THEN NULL ELSE $3 END"""


def _manifest_ctes(first: int, admitted: str = "") -> str:
    """The fragment and manifest inserts; their parameters: $11 fragment digests, $12 their
    gzip, then from ``first``: fragment bytes, before, after, lead, run_from, run_to, trail,
    payload bytes (``manifest_args``)."""
    sizes, before, after, lead, run_from, run_to, trail, total = (f"${first + i}" for i in range(8))
    where = f"WHERE EXISTS (SELECT 1 FROM {admitted})" if admitted else ""
    return f"""fragment AS (
  INSERT INTO fragments (digest, body_gzip, bytes)
  SELECT d, g, b FROM unnest($11::bytea[], $12::bytea[], {sizes}::int[]) AS f(d, g, b) {where}
  ON CONFLICT (digest) DO NOTHING
), manifest AS (
  INSERT INTO manifests (content_hash, room_id, before, after, lead, run_from, run_to, trail,
                         bytes)
  SELECT $7, $2, {before}, {after}, {lead}, {run_from}, {run_to}, {trail}, {total} {where}
  ON CONFLICT (content_hash) DO NOTHING
)"""


CREATE = f"""
WITH {_manifest_ctes(22)}, snapshot AS (
  INSERT INTO snapshots (id, room_id, requested_by, scope, options, template, content_hash,
                         message_count, idempotency_key, request_hash, callback_url)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $21)
), task AS (
  INSERT INTO tasks (id, snapshot_id, created_at, deadline) VALUES ($13, $1, $14, $15)
), job AS (
  INSERT INTO outbox (task_id, routing_key, body, content_encoding, request_id, requested_by,
                      manifest)
  SELECT $13, $16, $17, $18, $19, {_OUTBOX_USER}, $7
)
INSERT INTO audit (actor, action, room_id, snapshot_id, outcome, request_id, client_addr)
VALUES ($3, 'snapshot.create', $2, $1, 'accepted', $19, $20)
"""
# The same, with the caller's rate limit check ($21-$26, db/rate_limits.py; the callback URL
# moves to $27, the manifest to $28-) in the statement:
# it writes only when the check admits it (or the user is not limited), and answers the
# check's outcome; still one round trip, and a refusal writes nothing.
CREATE_LIMITED = f"""
WITH {rate_limits.take_ctes(21)}, admitted AS (
  SELECT 1 FROM taken UNION ALL SELECT 1 FROM policy WHERE quota IS NULL
), {_manifest_ctes(28, "admitted")}, snapshot AS (
  INSERT INTO snapshots (id, room_id, requested_by, scope, options, template, content_hash,
                         message_count, idempotency_key, request_hash, callback_url)
  SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $27 FROM admitted
), task AS (
  INSERT INTO tasks (id, snapshot_id, created_at, deadline) SELECT $13, $1, $14, $15 FROM admitted
), job AS (
  INSERT INTO outbox (task_id, routing_key, body, content_encoding, request_id, requested_by,
                      manifest)
  SELECT $13, $16, $17, $18, $19, {_OUTBOX_USER}, $7 FROM admitted
), audited AS (
  INSERT INTO audit (actor, action, room_id, snapshot_id, outcome, request_id, client_addr)
  SELECT $3, 'snapshot.create', $2, $1, 'accepted', $19, $20 FROM admitted
)
{rate_limits.OUTCOME}
"""
_COLUMNS = """
s.id, s.room_id, s.requested_by, s.created_at, s.scope, s.options, s.template,
s.content_hash, s.message_count, s.status, s.artifact_key, s.artifact_bytes, s.artifact_pages,
s.pdf_sha256, s.error_code, s.error_message, s.request_hash, r.name AS room_name,
t.id AS task_id, t.status AS task_status, t.progress AS task_progress, t.phase AS task_phase,
t.cache AS task_cache, t.error_code AS task_error_code, t.error_message AS task_error_message,
t.created_at AS task_created_at, t.started_at AS task_started_at,
t.completed_at AS task_completed_at, t.pieces_done AS task_pieces_done,
t.pieces_total AS task_pieces_total
"""
_FROM = """
FROM snapshots s JOIN rooms r ON r.id = s.room_id
LEFT JOIN LATERAL (SELECT * FROM tasks WHERE snapshot_id = s.id
                   ORDER BY created_at DESC LIMIT 1) t ON true
"""
GET = f"SELECT {_COLUMNS} {_FROM} WHERE s.id = $1 AND s.deleted_at IS NULL"
BY_IDEMPOTENCY = f"""
SELECT {_COLUMNS} {_FROM}
WHERE s.requested_by = $1 AND s.idempotency_key = $2 AND s.deleted_at IS NULL
"""
LIST = f"""
SELECT {_COLUMNS} {_FROM}
WHERE s.room_id = $1 AND s.deleted_at IS NULL
  AND ($2::timestamptz IS NULL OR (s.created_at, s.id) < ($2, $3))
ORDER BY s.created_at DESC, s.id DESC LIMIT $4
"""
SOFT_DELETE = "UPDATE snapshots SET deleted_at = now() WHERE id = $1 AND deleted_at IS NULL"
FAIL_UNFINISHED = """
UPDATE snapshots SET status = 'failed', error_code = $2, error_message = $3
WHERE id = ANY($1::uuid[]) AND status IN ('queued', 'rendering')
"""


async def create(
    conn: Conn,
    snapshot: dict[str, Any],
    manifest: Manifest,
    job: dict[str, Any],
    client_addr: str | None,
    check: rate_limits.TakeArgs | None = None,
) -> asyncpg.Record | None:
    """Insert the snapshot (``snapshot``: the columns of ``snapshots``), its manifest and
    fragments unless stored already, its task and outbox row (``job``) and the
    ``snapshot.create`` audit entry. With a rate limit ``check``, only if it admits; returns
    its outcome (``db.rate_limits``)."""
    values = (
        snapshot["id"],
        snapshot["room_id"],
        snapshot["requested_by"],
        snapshot["scope"],
        snapshot["options"],
        snapshot["template"],
        snapshot["content_hash"],
        snapshot["message_count"],
        snapshot["idempotency_key"],
        snapshot["request_hash"],
        [f.digest for f in manifest.fragments],
        [f.gzip() for f in manifest.fragments],
        job["task_id"],
        job["created_at"],
        job["deadline"],
        job["routing_key"],
        job["body"],
        job["content_encoding"],
        job["request_id"],
        client_addr,
    )
    run_from, run_to = manifest.run or (None, None)
    stored = (
        [len(f.data) for f in manifest.fragments],
        manifest.before,
        manifest.after,
        manifest.lead,
        run_from,
        run_to,
        manifest.trail,
        manifest.bytes,
    )
    callback_url = snapshot.get("callback_url")
    if check is None:
        await conn.execute(CREATE, *values, callback_url, *stored)
        return None
    return await conn.fetchrow(CREATE_LIMITED, *values, *check, callback_url, *stored)


async def get(conn: Conn, snapshot_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(GET, snapshot_id)


async def by_idempotency_key(conn: Conn, user_id: str, key: str) -> asyncpg.Record | None:
    return await conn.fetchrow(BY_IDEMPOTENCY, user_id, key)


async def list_page(
    conn: Conn, room_id: UUID, before: tuple[dt.datetime, UUID] | None, limit: int
) -> list[asyncpg.Record]:
    at, sid = before if before else (None, None)
    return list(await conn.fetch(LIST, room_id, at, sid, limit))


async def soft_delete(conn: Conn, snapshot_id: UUID) -> bool:
    status: str = await conn.execute(SOFT_DELETE, snapshot_id)
    return status == "UPDATE 1"


async def fail_unfinished(
    conn: asyncpg.Connection, snapshot_ids: list[UUID], code: str, message: str
) -> None:
    """Mark snapshots failed unless they already have a PDF (a re-render may fail alone)."""
    await conn.execute(FAIL_UNFINISHED, snapshot_ids, code, message)
