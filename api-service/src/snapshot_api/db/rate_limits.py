"""Rate limit state (GCRA, one row per user and action) and the administrators' overrides."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import asyncpg

from snapshot_api.rate_policy import Limit, Rate

# One atomic statement per check. `policy`: the user's override, else the default ($3/$4,
# NULL = unlimited), and the clock ($6, else the database's). `step`: the emission interval
# and what `cost` units take of the bucket (whose depth is one window: the burst is `quota`
# units); empty when unlimited or when the cost exceeds the whole quota. `taken`: the
# theoretical arrival time moves on by the cost only if it then stays within one window of
# now; units spent under another limit are carried over in the new one's interval. A refusal
# changes nothing (the row stays locked until the transaction ends, so concurrent checks of
# one user queue here, and different users never meet).
_NEXT = """(excluded.tat + greatest(r.tat - (SELECT now FROM step), interval '0')
               * ((SELECT unit_us FROM step)::float8 / r.unit_us))"""
TAKE = f"""
WITH policy AS (
    SELECT coalesce($6::timestamptz, statement_timestamp()) AS now,
           CASE WHEN o.user_id IS NULL THEN $3::integer ELSE o.quota END AS quota,
           CASE WHEN o.user_id IS NULL THEN $4::integer ELSE o.window_seconds END AS window_seconds
    FROM (VALUES (1)) AS one
    LEFT JOIN rate_limit_overrides o ON o.user_id = $1 AND o.action = $2
), step AS (
    SELECT now,
           window_seconds::bigint * 1000000 / quota AS unit_us,
           ($5::bigint * window_seconds * 1000000 / quota) * interval '1 microsecond' AS cost,
           now + window_seconds * interval '1 second' AS horizon
    FROM policy WHERE quota IS NOT NULL AND $5::bigint <= quota
), taken AS (
    INSERT INTO rate_limits AS r (user_id, action, tat, unit_us)
    SELECT $1, $2, now + cost, unit_us FROM step
    ON CONFLICT (user_id, action) DO UPDATE
        SET tat = {_NEXT}, unit_us = excluded.unit_us
        WHERE {_NEXT} <= (SELECT horizon FROM step)
    RETURNING r.tat
)
SELECT p.now, p.quota, p.window_seconds, (SELECT tat FROM taken) AS tat FROM policy p
"""
# After a refusal: where the bucket stands (a new statement sees a row another transaction
# inserted meanwhile, which TAKE's snapshot may not).
STATE = "SELECT tat, unit_us FROM rate_limits WHERE user_id = $1 AND action = $2"
OVERRIDES = """
SELECT action, quota, window_seconds, updated_at, updated_by
FROM rate_limit_overrides WHERE user_id = $1 ORDER BY action
"""
DELETE_OVERRIDES = "DELETE FROM rate_limit_overrides WHERE user_id = $1"
INSERT_OVERRIDES = """
INSERT INTO rate_limit_overrides (user_id, action, quota, window_seconds, updated_by)
SELECT $1, a.action, a.quota, a.window_seconds, $2
FROM unnest($3::text[], $4::integer[], $5::integer[]) AS a(action, quota, window_seconds)
"""


async def take(
    conn: asyncpg.Connection,
    user_id: str,
    action: str,
    default: Limit,
    cost: int,
    now: dt.datetime | None,
) -> asyncpg.Record:
    """``now``, the user's ``quota`` and ``window_seconds`` (NULL: unlimited) and the new
    ``tat`` (NULL: refused, or the cost exceeds the quota)."""
    quota, window = (default.quota, default.window) if default is not None else (None, None)
    row = await conn.fetchrow(TAKE, user_id, action, quota, window, cost, now)
    assert row is not None
    return row


async def state(conn: asyncpg.Connection, user_id: str, action: str) -> asyncpg.Record | None:
    """``tat`` and the ``unit_us`` it was counted in, or ``None`` when never used."""
    return await conn.fetchrow(STATE, user_id, action)


async def overrides(conn: asyncpg.Connection | asyncpg.Pool, user_id: str) -> list[asyncpg.Record]:
    return list(await conn.fetch(OVERRIDES, user_id))


async def replace_overrides(
    conn: asyncpg.Connection, user_id: str, limits: Mapping[str, Limit], by: str
) -> None:
    """The user's overrides become exactly ``limits`` (call inside a transaction)."""
    await conn.execute(DELETE_OVERRIDES, user_id)
    if limits:
        actions = list(limits)
        await conn.execute(
            INSERT_OVERRIDES,
            user_id,
            by,
            actions,
            [_quota(limits[a]) for a in actions],
            [_window(limits[a]) for a in actions],
        )


def _quota(limit: Limit) -> int | None:
    return limit.quota if isinstance(limit, Rate) else None


def _window(limit: Limit) -> int | None:
    return limit.window if isinstance(limit, Rate) else None
