"""Rate limit state (GCRA, one row per user and action) and the administrators' overrides."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import asyncpg

from snapshot_api.rate_policy import Limit, Rate

# One atomic statement per check (or a write statement that embeds it: db/snapshots.py).
# `policy`: the user's override, else the default (NULL = unlimited), and the clock (the
# database's unless given). `step`: the emission interval
# and what `cost` units take of the bucket (whose depth is one window: the burst is `quota`
# units); empty when unlimited or when the cost exceeds the whole quota. `taken`: the
# theoretical arrival time moves on by the cost only if it then stays within one window of
# now; units spent under another limit are carried over in the new one's interval. A refusal
# changes nothing (the row stays locked until the transaction ends, so concurrent checks of
# one user queue here, and different users never meet).
_NEXT = """(excluded.tat + greatest(r.tat - (SELECT now FROM step), interval '0')
               * ((SELECT unit_us FROM step)::float8 / r.unit_us))"""


def take_ctes(first: int) -> str:
    """The check's CTEs (``policy``, ``step``, ``taken``), its six parameters numbered from
    ``first``: user, action, default quota, default window seconds, cost, now (``take_args``).
    A statement that embeds them writes only when ``taken`` has a row or the user is not
    limited, and ends with ``OUTCOME``."""
    user, action, quota, window, cost, now = (f"${first + i}" for i in range(6))
    return f"""policy AS (
    SELECT coalesce({now}::timestamptz, statement_timestamp()) AS now,
           CASE WHEN o.user_id IS NULL THEN {quota}::integer ELSE o.quota END AS quota,
           CASE WHEN o.user_id IS NULL THEN {window}::integer ELSE o.window_seconds END
               AS window_seconds
    FROM (VALUES (1)) AS one
    LEFT JOIN rate_limit_overrides o ON o.user_id = {user} AND o.action = {action}
), step AS (
    SELECT now,
           window_seconds::bigint * 1000000 / quota AS unit_us,
           ({cost}::bigint * window_seconds * 1000000 / quota) * interval '1 microsecond' AS cost,
           now + window_seconds * interval '1 second' AS horizon
    FROM policy WHERE quota IS NOT NULL AND {cost}::bigint <= quota
), taken AS (
    INSERT INTO rate_limits AS r (user_id, action, tat, unit_us)
    SELECT {user}, {action}, now + cost, unit_us FROM step
    ON CONFLICT (user_id, action) DO UPDATE
        SET tat = {_NEXT}, unit_us = excluded.unit_us
        WHERE {_NEXT} <= (SELECT horizon FROM step)
    RETURNING r.tat
)"""


OUTCOME = "SELECT p.now, p.quota, p.window_seconds, (SELECT tat FROM taken) AS tat FROM policy p"
TAKE = f"WITH {take_ctes(1)}\n{OUTCOME}"
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


TakeArgs = tuple[str, str, int | None, int | None, int, dt.datetime | None]


def take_args(
    user_id: str, action: str, default: Limit, cost: int, now: dt.datetime | None
) -> TakeArgs:
    quota, window = (default.quota, default.window) if default is not None else (None, None)
    return (user_id, action, quota, window, cost, now)


async def take(conn: asyncpg.Connection, args: TakeArgs) -> asyncpg.Record:
    """``now``, the user's ``quota`` and ``window_seconds`` (NULL: unlimited) and the new
    ``tat`` (NULL: refused, or the cost exceeds the quota)."""
    row = await conn.fetchrow(TAKE, *args)
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
