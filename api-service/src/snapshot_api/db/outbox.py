"""The transactional outbox: render jobs written with their snapshot, deleted once published.

The relay locks a batch of publishable rows (``SKIP LOCKED``: other workers take other rows),
publishes them, then settles each row on its own in the same transaction: a confirmed row is
deleted (its task marked published), a failed one has its attempts counted, and one that failed
too often (or can never be published) is parked: it stays, marked, for an operator, and the
relay skips it.

Fair rendering: a row that names its user (``requested_by``) is publishable only while that
user has fewer than the per-user limit of jobs published and unfinished; the others wait,
counting no attempt, until one of that user's tasks finishes. Relays take turns on an advisory
lock, so several API workers together never publish past the limit.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from uuid import UUID

import asyncpg

INSERT = """
INSERT INTO outbox (task_id, routing_key, body, content_encoding, request_id, requested_by,
                    manifest)
VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id
"""


@dataclass(frozen=True)
class NewJob:
    """A render attempt to enqueue: the values of its ``tasks`` and ``outbox`` rows
    (``services/render_jobs.py`` builds it). ``manifest``: the body is the job's envelope, the
    relay splices that manifest's payload in."""

    task_id: UUID
    snapshot_id: UUID
    created_at: dt.datetime
    deadline: dt.datetime
    routing_key: str
    body: bytes
    content_encoding: str | None
    request_id: str | None
    requested_by: str | None
    manifest: str | None = None


# One relay at a time decides what to publish (held until its transaction ends).
TAKE_TURN = "SELECT pg_advisory_xact_lock(hashtextextended('outbox-relay', 0))"
# The rows publishable now, oldest first, at most $1: every row that names no user, and of each
# user with waiting rows, the oldest (``$2`` minus its jobs published and unfinished). The users
# come from a skip scan of ``outbox_pending_user`` (one index probe per user, however many rows
# wait), their outstanding jobs from ``tasks_outstanding``. ``finished``: the task ended while
# its row waited (deadline passed): nothing to publish.
LOCK_PUBLISHABLE = """
WITH RECURSIVE users AS (
  (SELECT requested_by AS who FROM outbox
   WHERE published_at IS NULL AND parked_at IS NULL AND requested_by IS NOT NULL
   ORDER BY requested_by LIMIT 1)
  UNION ALL
  SELECT (SELECT o.requested_by FROM outbox o
          WHERE o.published_at IS NULL AND o.parked_at IS NULL AND o.requested_by > u.who
          ORDER BY o.requested_by LIMIT 1)
  FROM users u WHERE u.who IS NOT NULL
), outstanding AS (
  SELECT s.requested_by AS who, count(*) AS n
  FROM tasks t JOIN snapshots s ON s.id = t.snapshot_id
  WHERE t.published_at IS NOT NULL AND t.status IN ('queued', 'rendering')
  GROUP BY s.requested_by
), allowed AS (
  SELECT r.id FROM users u
  LEFT JOIN outstanding b ON b.who = u.who
  CROSS JOIN LATERAL (
    SELECT o.id FROM outbox o
    WHERE o.requested_by = u.who AND o.published_at IS NULL AND o.parked_at IS NULL
    ORDER BY o.id LIMIT GREATEST($2 - COALESCE(b.n, 0), 0)
  ) r
  WHERE u.who IS NOT NULL
  UNION ALL
  (SELECT id FROM outbox
   WHERE published_at IS NULL AND parked_at IS NULL AND requested_by IS NULL
   ORDER BY id LIMIT $1)
)
SELECT o.id, o.task_id, o.routing_key, o.body, o.content_encoding, o.request_id, o.attempts,
       o.manifest,
       t.status IN ('completed', 'failed') AS finished
FROM outbox o JOIN tasks t ON t.id = o.task_id
WHERE o.id = ANY (ARRAY(SELECT id FROM allowed))  -- primary-key probes, not a scan of all
  AND o.published_at IS NULL AND o.parked_at IS NULL
ORDER BY o.id LIMIT $1
FOR UPDATE OF o SKIP LOCKED
"""
DELETE = "DELETE FROM outbox WHERE id = ANY($1::bigint[])"
# Confirmed rows: forgotten, and their tasks count as published (outstanding until finished).
PUBLISHED = """
WITH gone AS (DELETE FROM outbox WHERE id = ANY($1::bigint[]) RETURNING task_id)
UPDATE tasks t SET published_at = now() FROM gone WHERE t.id = gone.task_id
"""
NO_LIMIT = 2**31 - 1
# One failed attempt per row; parked when it reached ``$4`` attempts or can never succeed.
RECORD_FAILURES = """
UPDATE outbox o SET attempts = o.attempts + 1, last_error = f.error,
       parked_at = CASE WHEN f.hopeless OR o.attempts + 1 >= $4 THEN now() END
FROM unnest($1::bigint[], $2::text[], $3::bool[]) AS f(id, error, hopeless), tasks t
WHERE o.id = f.id AND t.id = o.task_id
RETURNING o.id, o.task_id, t.snapshot_id, o.attempts, o.last_error,
          o.parked_at IS NOT NULL AS parked
"""
# Unpublished rows, and how many of them wait for their user's turn (``$1`` per user; the
# rest could be published now): a full count, for scrapes and the admin summary only.
BACKLOG = """
WITH outstanding AS (
  SELECT s.requested_by AS who, count(*) AS n
  FROM tasks t JOIN snapshots s ON s.id = t.snapshot_id
  WHERE t.published_at IS NOT NULL AND t.status IN ('queued', 'rendering')
  GROUP BY s.requested_by
), waiting AS (
  SELECT requested_by AS who, count(*) AS n FROM outbox
  WHERE published_at IS NULL AND parked_at IS NULL GROUP BY requested_by
)
SELECT COALESCE(sum(w.n), 0) AS pending,
       COALESCE(sum(CASE WHEN w.who IS NULL THEN 0
                    ELSE GREATEST(w.n - GREATEST($1 - COALESCE(b.n, 0), 0), 0) END), 0) AS held
FROM waiting w LEFT JOIN outstanding b ON b.who = w.who
"""
PARKED = "SELECT count(*) FROM outbox WHERE parked_at IS NOT NULL"


async def insert(conn: asyncpg.Connection, job: NewJob) -> int:
    """Add the job's row; ``requested_by`` None: not limited per user."""
    row = (job.task_id, job.routing_key, job.body, job.content_encoding, job.request_id)
    return int(await conn.fetchval(INSERT, *row, job.requested_by, job.manifest))


async def lock_publishable(
    conn: asyncpg.Connection, limit: int, per_user: int
) -> list[asyncpg.Record]:
    """Up to ``limit`` rows publishable now (``per_user`` jobs per user outstanding at most;
    0: no limit), oldest first, locked until the caller's transaction ends; the caller's
    transaction holds the relays' turn from here on."""
    await conn.execute(TAKE_TURN)
    return list(await conn.fetch(LOCK_PUBLISHABLE, limit, per_user or NO_LIMIT))


async def published(conn: asyncpg.Connection, ids: list[int]) -> None:
    """Forget rows whose publish the broker confirmed; their tasks are now outstanding."""
    if ids:
        await conn.execute(PUBLISHED, ids)


async def delete(conn: asyncpg.Connection, ids: list[int]) -> None:
    """Forget rows without publishing them (their task is over)."""
    if ids:
        await conn.execute(DELETE, ids)


async def record_failures(
    conn: asyncpg.Connection, failures: dict[int, tuple[str, bool]], max_attempts: int
) -> list[asyncpg.Record]:
    """Count one failed attempt per row (``{id: (error, hopeless)}``); returns the rows, with
    ``parked`` true for those parked now."""
    if not failures:
        return []
    ids = list(failures)
    errors = [failures[i][0][:1000] for i in ids]
    hopeless = [failures[i][1] for i in ids]
    return list(await conn.fetch(RECORD_FAILURES, ids, errors, hopeless, max_attempts))


async def backlog(conn: asyncpg.Connection | asyncpg.Pool, per_user: int = 0) -> tuple[int, int]:
    """Rows that could be published now but are not (the broker is down, say), and rows that
    wait for their user's turn (``per_user`` jobs in flight; 0: no limit, none wait)."""
    row = await conn.fetchrow(BACKLOG, per_user or NO_LIMIT)
    pending, held = int(row["pending"]), int(row["held"])
    return pending - held, held


async def parked(conn: asyncpg.Connection | asyncpg.Pool) -> int:
    return int(await conn.fetchval(PARKED))
