"""Snapshots (with their latest task) and idempotency look-ups."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, fields
from typing import Any, TypeAlias
from uuid import UUID

import asyncpg

from snapshot_api.db import params, rate_limits
from snapshot_api.db.manifests import Manifest
from snapshot_api.db.outbox import NewJob

Conn: TypeAlias = asyncpg.Connection | asyncpg.Pool


@dataclass(frozen=True)
class NewSnapshot:
    """A ``snapshots`` row to insert."""

    id: UUID
    room_id: UUID
    requested_by: str
    scope: dict[str, Any]
    options: dict[str, Any]
    template: str
    content_hash: str
    message_count: int
    idempotency_key: str | None
    request_hash: str
    callback_url: str | None


@dataclass(frozen=True)
class CreateParams:
    """The parameters of ``CREATE`` (and of ``CREATE_LIMITED``, whose rate limit check
    follows them), in order: the snapshot, its manifest's fragments, its task and outbox row,
    the audit entry's client address, then the manifest."""

    id: UUID
    room_id: UUID
    requested_by: str
    scope: dict[str, Any]
    options: dict[str, Any]
    template: str
    content_hash: str
    message_count: int
    idempotency_key: str | None
    request_hash: str
    callback_url: str | None
    fragment_digests: list[bytes]
    fragment_gzip: list[bytes]
    fragment_bytes: list[int]
    task_id: UUID
    task_created_at: dt.datetime
    deadline: dt.datetime
    routing_key: str
    body: bytes
    content_encoding: str | None
    request_id: str | None
    client_addr: str | None
    before: bytes
    after: bytes
    lead: list[bytes]
    run_from: int | None
    run_to: int | None
    trail: list[bytes]
    payload_bytes: int

    @classmethod
    def of(
        cls, snapshot: NewSnapshot, manifest: Manifest, job: NewJob, client_addr: str | None
    ) -> CreateParams:
        run_from, run_to = manifest.run or (None, None)
        return cls(
            **{f.name: getattr(snapshot, f.name) for f in fields(NewSnapshot)},
            fragment_digests=[f.digest for f in manifest.fragments],
            fragment_gzip=[f.gzip() for f in manifest.fragments],
            fragment_bytes=[len(f.data) for f in manifest.fragments],
            task_id=job.task_id,
            task_created_at=job.created_at,
            deadline=job.deadline,
            routing_key=job.routing_key,
            body=job.body,
            content_encoding=job.content_encoding,
            request_id=job.request_id,
            client_addr=client_addr,
            before=manifest.before,
            after=manifest.after,
            lead=manifest.lead,
            run_from=run_from,
            run_to=run_to,
            trail=manifest.trail,
            payload_bytes=manifest.bytes,
        )


P = params.slots(CreateParams)
# A new snapshot with its manifest (stored once per content hash) and the fragments it froze
# (once per digest), its task, outbox row and audit entry: one statement, so one round trip
# and atomic without BEGIN/COMMIT. Foreign keys between the sibling inserts are checked at the
# end of the statement, when all of them are in place. The outbox row holds the job's envelope
# and names the manifest: the relay builds the body (messaging/job_bodies.py). It counts
# against its user's fair share of renders (README: Fair rendering) unless the content has a
# completed snapshot already: then it is most likely a cache hit, and goes out at once.
_OUTBOX_USER = f"""CASE WHEN EXISTS (SELECT 1 FROM snapshots WHERE content_hash = {P.content_hash}
                           AND status = 'completed') THEN NULL ELSE {P.requested_by} END"""


def _manifest_ctes(admitted: str = "") -> str:
    """The fragment and manifest inserts (only if ``admitted`` has a row, when given)."""
    where = f"WHERE EXISTS (SELECT 1 FROM {admitted})" if admitted else ""
    return f"""fragment AS (
  INSERT INTO fragments (digest, body_gzip, bytes)
  SELECT d, g, b
  FROM unnest({P.fragment_digests}::bytea[], {P.fragment_gzip}::bytea[],
              {P.fragment_bytes}::int[]) AS f(d, g, b) {where}
  ON CONFLICT (digest) DO NOTHING
), manifest AS (
  INSERT INTO manifests (content_hash, room_id, before, after, lead, run_from, run_to, trail,
                         bytes)
  SELECT {P.content_hash}, {P.room_id}, {P.before}, {P.after}, {P.lead}, {P.run_from},
         {P.run_to}, {P.trail}, {P.payload_bytes} {where}
  ON CONFLICT (content_hash) DO NOTHING
)"""


def _inserts(admitted: str = "") -> str:
    """The snapshot, task and outbox inserts and the audit entry's values (a SELECT)."""
    source = f" FROM {admitted}" if admitted else ""
    return f"""snapshot AS (
  INSERT INTO snapshots (id, room_id, requested_by, scope, options, template, content_hash,
                         message_count, idempotency_key, request_hash, callback_url)
  SELECT {P.id}, {P.room_id}, {P.requested_by}, {P.scope}, {P.options}, {P.template},
         {P.content_hash}, {P.message_count}, {P.idempotency_key}, {P.request_hash},
         {P.callback_url}{source}
), task AS (
  INSERT INTO tasks (id, snapshot_id, created_at, deadline)
  SELECT {P.task_id}, {P.id}, {P.task_created_at}, {P.deadline}{source}
), job AS (
  INSERT INTO outbox (task_id, routing_key, body, content_encoding, request_id, requested_by,
                      manifest)
  SELECT {P.task_id}, {P.routing_key}, {P.body}, {P.content_encoding}, {P.request_id},
         {_OUTBOX_USER}, {P.content_hash}{source}
)"""


_AUDIT = f"""INSERT INTO audit (actor, action, room_id, snapshot_id, outcome, request_id,
                   client_addr)
SELECT {P.requested_by}, 'snapshot.create', {P.room_id}, {P.id}, 'accepted', {P.request_id},
       {P.client_addr}"""
CREATE = f"WITH {_manifest_ctes()}, {_inserts()}\n{_AUDIT}"
# The same, with the caller's rate limit check (db/rate_limits.py; its parameters follow
# CreateParams') in the statement: it writes only when the check admits it (or the user is not
# limited), and answers the check's outcome; still one round trip, and a refusal writes nothing.
CREATE_LIMITED = f"""
WITH {rate_limits.take_ctes(params.following(CreateParams))}, admitted AS (
  SELECT 1 FROM taken UNION ALL SELECT 1 FROM policy WHERE quota IS NULL
), {_manifest_ctes("admitted")}, {_inserts("admitted")}, audited AS (
  {_AUDIT} FROM admitted
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
    conn: Conn, record: CreateParams, check: rate_limits.TakeArgs | None = None
) -> asyncpg.Record | None:
    """Insert the snapshot, its manifest and fragments unless stored already, its task and
    outbox row and the ``snapshot.create`` audit entry. With a rate limit ``check``, only if it
    admits; returns its outcome (``db.rate_limits``)."""
    if check is None:
        await conn.execute(CREATE, *params.args(record))
        return None
    return await conn.fetchrow(CREATE_LIMITED, *params.args(record), *check)


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
