"""The audit trail: who did what to which room or snapshot, and how it ended."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

import asyncpg

INSERT = """
INSERT INTO audit (actor, action, room_id, snapshot_id, outcome, request_id, client_addr)
VALUES ($1, $2, $3, $4, $5, $6, $7)
"""
PAGE = """
SELECT id, at, actor, action, room_id, snapshot_id, outcome, request_id, client_addr FROM audit
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
) -> None:
    await conn.execute(
        INSERT, ctx.actor, action, room_id, snapshot_id, outcome, ctx.request_id, ctx.client_addr
    )


async def page(
    conn: asyncpg.Connection | asyncpg.Pool, before: int | None, limit: int
) -> list[asyncpg.Record]:
    return list(await conn.fetch(PAGE, before, limit))
