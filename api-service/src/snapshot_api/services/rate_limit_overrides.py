"""Administrators' per-user rate limits: read, and replace (audited with the old and new)."""

from __future__ import annotations

from typing import Any

import asyncpg

from snapshot_api.db import audit
from snapshot_api.db import rate_limits as db
from snapshot_api.rate_policy import ACTIONS, OFF, Limit, Rate, describe, parse_rate
from snapshot_api.services.access import Actor
from snapshot_api.services.rate_limits import Limiter


async def read(pool: asyncpg.Pool, limiter: Limiter, user_id: str) -> dict[str, Any]:
    async with pool.acquire() as conn:
        rows = await db.overrides(conn, user_id)
    return _view(limiter, user_id, rows)


async def replace(
    pool: asyncpg.Pool, limiter: Limiter, actor: Actor, user_id: str, limits: dict[str, str]
) -> dict[str, Any]:
    """The user's overrides become exactly ``limits`` (action → ``N/unit`` or ``off``); the
    next check of any worker applies them."""
    wanted: dict[str, Limit] = {action: parse_rate(text) for action, text in limits.items()}
    async with pool.acquire() as conn, conn.transaction():
        before = _texts(await db.overrides(conn, user_id))
        await db.replace_overrides(conn, user_id, wanted, actor.user.id)
        rows = await db.overrides(conn, user_id)
        await audit.record(
            conn,
            actor.audit,
            "admin.rate_limits.set",
            "changed" if before != _texts(rows) else "unchanged",
            subject=user_id,
            detail={"from": before, "to": _texts(rows)},
        )
    return _view(limiter, user_id, rows)


def _limit(row: asyncpg.Record) -> Limit:
    return Rate(row["quota"], row["window_seconds"]) if row["quota"] is not None else None


def _texts(rows: list[asyncpg.Record]) -> dict[str, str]:
    return {row["action"]: describe(_limit(row)) for row in rows}


def _view(limiter: Limiter, user_id: str, rows: list[asyncpg.Record]) -> dict[str, Any]:
    overrides = _texts(rows)
    defaults = limiter.defaults
    effective = {
        action: OFF if defaults is None else overrides.get(action, describe(defaults[action]))
        for action in ACTIONS
    }
    latest = max(rows, key=lambda r: r["updated_at"], default=None)
    return {
        "user_id": user_id,
        "overrides": overrides,
        "effective": effective,
        "updated_at": latest["updated_at"] if latest else None,
        "updated_by": latest["updated_by"] if latest else None,
    }
