"""The audit trail: who did what to which room or snapshot, and how it ended."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg

log = logging.getLogger(__name__)

INSERT = """
INSERT INTO audit (actor, action, room_id, snapshot_id, outcome, request_id, client_addr,
                   subject, detail, count)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
"""
PAGE = """
SELECT id, at, actor, action, room_id, snapshot_id, outcome, request_id, client_addr, subject,
       detail, count
FROM audit
WHERE ($1::bigint IS NULL OR id < $1) ORDER BY id DESC LIMIT $2
"""


@dataclass(frozen=True)
class AuditContext:
    """Who is acting, from where, in which request."""

    actor: str | None
    request_id: str | None
    client_addr: str | None


async def record(
    conn: asyncpg.Connection | asyncpg.Pool,
    ctx: AuditContext,
    action: str,
    outcome: str,
    room_id: UUID | None = None,
    snapshot_id: UUID | None = None,
    *,
    subject: str | None = None,
    detail: dict[str, Any] | None = None,
    count: int = 1,
) -> None:
    """Write one entry; when the write fails, the entry is logged (actor, action and ids) before
    the error goes on, so a dropped audit write still leaves its trace."""
    try:
        await conn.execute(
            INSERT,
            ctx.actor,
            action,
            room_id,
            snapshot_id,
            outcome,
            ctx.request_id,
            ctx.client_addr,
            subject,
            detail,
            count,
        )
    except BaseException as exc:
        log.error(
            "audit entry not written (%s): actor=%r action=%s outcome=%s room_id=%s"
            " snapshot_id=%s subject=%r detail=%s count=%d request_id=%s client_addr=%s",
            type(exc).__name__,
            ctx.actor,
            action,
            outcome,
            room_id,
            snapshot_id,
            subject,
            detail,
            count,
            ctx.request_id,
            ctx.client_addr,
        )
        raise


async def page(
    conn: asyncpg.Connection | asyncpg.Pool, before: int | None, limit: int
) -> list[asyncpg.Record]:
    return list(await conn.fetch(PAGE, before, limit))
