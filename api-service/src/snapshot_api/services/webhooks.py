"""Webhook use cases: the caller's signing secret, callback URL checks, the delivery log."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg

from snapshot_api.db import audit
from snapshot_api.db import webhooks as db
from snapshot_api.errors import CallbackUrlRefused, WebhookSecretMissing
from snapshot_api.pagination import decode_time_and_id, encode_cursor
from snapshot_api.services.access import Actor
from snapshot_api.settings import Settings
from snapshot_api.webhooks import signing, urls


async def rotate_secret(pool: asyncpg.Pool, actor: Actor) -> str:
    """Create or replace the caller's secret; the returned ``whsec_…`` is not shown again.
    Deliveries not yet sent are signed with the new secret."""
    secret = signing.new_secret()
    async with pool.acquire() as conn, conn.transaction():
        await db.put_secret(conn, actor.user.id, secret)
        await audit.record(conn, actor.audit, "webhook.secret", "rotated")
    return signing.encode(secret)


async def check_callback(
    conn: asyncpg.Connection, settings: Settings, actor: Actor, url: str
) -> str:
    """The normalised callback URL, or a 422 problem saying why it cannot be used."""
    try:
        checked = urls.parse(url, settings.webhook_hosts, settings.webhook_allow_loopback)
    except urls.CallbackUrlError as exc:
        raise CallbackUrlRefused(str(exc)) from exc
    if not await db.has_secret(conn, actor.user.id):
        raise WebhookSecretMissing(
            "Create a webhook secret first (POST /api/v1/webhooks/secret): webhooks are"
            " signed with it"
        )
    return checked.url


async def deliveries(
    pool: asyncpg.Pool, actor: Actor, snapshot_id: UUID | None, cursor: str | None, limit: int
) -> dict[str, Any]:
    before = decode_time_and_id(cursor) if cursor else None
    rows = await db.page(pool, actor.user.id, snapshot_id, before, limit + 1)
    items = [_delivery(r) for r in rows[:limit]]
    last = rows[limit - 1] if len(rows) > limit else None
    cursor = encode_cursor(last["created_at"].isoformat(), str(last["id"])) if last else None
    return {"items": items, "next_cursor": cursor}


def _delivery(row: asyncpg.Record) -> dict[str, Any]:
    item = dict(row)
    item["type"] = item.pop("event_type")
    if item["status"] != "pending":
        item["next_attempt_at"] = None
    return item
