"""Webhook secrets, deliveries and attempts (rows written by the tasks trigger, migration 0008)."""

from __future__ import annotations

import datetime as dt
from typing import TypeAlias
from uuid import UUID

import asyncpg

Conn: TypeAlias = asyncpg.Connection | asyncpg.Pool

PUT_SECRET = """
INSERT INTO webhook_secrets (user_id, secret) VALUES ($1, $2)
ON CONFLICT (user_id) DO UPDATE SET secret = EXCLUDED.secret, created_at = now()
"""
HAS_SECRET = "SELECT EXISTS (SELECT 1 FROM webhook_secrets WHERE user_id = $1)"
# Claim due deliveries in one statement: each gets its next attempt number and an attempt row
# (so an attempt number is sent at most once), and a lease: if this worker dies mid-send, the
# row is due again when the lease ends and goes out as the next attempt, same webhook-id.
CLAIM = """
WITH due AS (
  SELECT id FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= now()
  ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED
), claimed AS (
  UPDATE webhook_deliveries d
     SET attempts = d.attempts + 1, last_attempt_at = now(),
         next_attempt_at = now() + make_interval(secs => $2)
    FROM due WHERE d.id = due.id
  RETURNING d.id, d.user_id, d.url, d.body, d.attempts, d.created_at
), started AS (
  INSERT INTO webhook_attempts (delivery_id, attempt, started_at)
  SELECT id, attempts, now() FROM claimed
)
SELECT c.id, c.url, c.body, c.attempts, c.created_at, s.secret
FROM claimed c LEFT JOIN webhook_secrets s ON s.user_id = c.user_id
"""
# The outcome of one claimed attempt: always in the attempt's own row (it happened), in the
# delivery only while it is the latest attempt (a slow sender whose lease ran out, after which
# another worker claimed the next attempt, changes nothing there).
RECORD = """
WITH attempt AS (
  UPDATE webhook_attempts SET finished_at = now(), status_code = $4, error = $5
  WHERE delivery_id = $1 AND attempt = $2
)
UPDATE webhook_deliveries
   SET status = $3, last_status_code = $4, last_error = $5,
       next_attempt_at = COALESCE($6, next_attempt_at),
       finished_at = CASE WHEN $3 = 'pending' THEN NULL ELSE now() END
 WHERE id = $1 AND attempts = $2 AND status = 'pending'
"""
PAGE = """
SELECT d.id, d.task_id, d.snapshot_id, d.event_type, d.url, d.status, d.attempts,
       d.created_at, d.next_attempt_at, d.last_attempt_at, d.last_status_code, d.last_error,
       d.finished_at,
       COALESCE((SELECT jsonb_agg(jsonb_build_object(
                   'attempt', a.attempt, 'started_at', a.started_at,
                   'finished_at', a.finished_at, 'status_code', a.status_code,
                   'error', a.error) ORDER BY a.attempt)
                 FROM webhook_attempts a WHERE a.delivery_id = d.id), '[]') AS history
FROM webhook_deliveries d
WHERE d.user_id = $1 AND ($2::uuid IS NULL OR d.snapshot_id = $2)
  AND ($3::timestamptz IS NULL OR (d.created_at, d.id) < ($3, $4))
ORDER BY d.created_at DESC, d.id DESC LIMIT $5
"""


async def put_secret(conn: Conn, user_id: str, secret: bytes) -> None:
    await conn.execute(PUT_SECRET, user_id, secret)


async def has_secret(conn: Conn, user_id: str) -> bool:
    return bool(await conn.fetchval(HAS_SECRET, user_id))


async def claim(conn: Conn, limit: int, lease_seconds: float) -> list[asyncpg.Record]:
    return list(await conn.fetch(CLAIM, limit, lease_seconds))


async def record(
    conn: Conn,
    delivery_id: UUID,
    attempt: int,
    status: str,
    status_code: int | None,
    error: str | None,
    next_attempt_at: dt.datetime | None,
) -> bool:
    """Store an attempt's outcome; false when the attempt was superseded."""
    done: str = await conn.execute(
        RECORD, delivery_id, attempt, status, status_code, error, next_attempt_at
    )
    return done == "UPDATE 1"


async def page(
    conn: Conn,
    user_id: str,
    snapshot_id: UUID | None,
    before: tuple[dt.datetime, UUID] | None,
    limit: int,
) -> list[asyncpg.Record]:
    at, key = before if before else (None, None)
    return list(await conn.fetch(PAGE, user_id, snapshot_id, at, key, limit))
