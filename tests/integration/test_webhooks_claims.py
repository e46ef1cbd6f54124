"""How deliveries are claimed, against the real PostgreSQL: two workers never send the same
attempt, and a worker that dies mid-send leaves an attempt without outcome that the next attempt
(same webhook-id) follows once its lease ends. The API's own loop is stopped so the test drives
the claims itself."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from aio_pika.abc import AbstractChannel
from snapshot_api.db import webhooks as db
from snapshot_api.webhooks.delivery import RetryPolicy, WebhookDelivery
from snapshot_api.webhooks.sender import Sender, SenderConfig
from support.api import Api, running_api, settings_for
from support.security import complete_on
from support.waiting import until
from support.webhook_receiver import Receiver


@pytest.fixture
async def api(database_url: str, queue_prefix: str, tmp_path: Any) -> AsyncIterator[Api]:
    settings = settings_for(database_url, queue_prefix, tmp_path, webhook_allow_loopback=True)
    async with running_api(settings) as api:
        await api.app.state.webhook_delivery.stop()  # the test claims by itself
        yield api


@pytest.fixture
def conn(db: asyncpg.Connection) -> asyncpg.Connection:
    """The shared ``db`` connection: ``db`` here names the deliveries' repository."""
    return db


def loop_for(api: Api, pool: asyncpg.Pool, batch: int = 16) -> WebhookDelivery:
    sender = Sender(SenderConfig((), True, 5.0))
    policy = RetryPolicy(max_attempts=3, retry_seconds=600, backoff_seconds=0.1)
    return WebhookDelivery(pool, api.settings.database_dsn, sender, policy, 0.1, batch)


async def pending_deliveries(
    api: Api, channel: AbstractChannel, conn: asyncpg.Connection, url: str, count: int
) -> list[str]:
    """``count`` completed snapshots with ``url`` as callback; their delivery ids."""
    await api.client.post("/api/v1/webhooks/secret", headers=api.auth("olivia"))
    room = await api.room()
    await api.post_messages(room, ["hello"])
    tasks = []
    for i in range(count):
        r = await api.snapshot(room, body={"callback_url": url, "options": {"title": f"T{i}"}})
        assert r.status_code == 202, r.text
        accepted = r.json()
        tasks.append(accepted["task_id"])
        await complete_on(channel, api, accepted)

    async def written() -> list[str] | None:
        rows = await conn.fetch(
            "SELECT id FROM webhook_deliveries WHERE task_id = ANY($1::uuid[])", tasks
        )
        return [str(r["id"]) for r in rows] if len(rows) == count else None

    return await until(written, what=f"{count} delivery rows")


async def test_two_workers_claiming_at_once_send_each_delivery_once(
    api: Api, channel: AbstractChannel, conn: asyncpg.Connection, receiver: Receiver
) -> None:
    ids = await pending_deliveries(api, channel, conn, receiver.url, 30)
    before = receiver.count()
    pools = [await asyncpg.create_pool(api.settings.database_dsn, min_size=1, max_size=4)]
    pools.append(await asyncpg.create_pool(api.settings.database_dsn, min_size=1, max_size=4))
    workers = [loop_for(api, pool, batch=4) for pool in pools]
    try:

        async def drain(worker: WebhookDelivery) -> int:
            sent = 0
            while n := await worker.deliver_once():
                sent += n
            return sent

        sent = await asyncio.gather(*(drain(w) for w in workers))
    finally:
        for w, pool in zip(workers, pools, strict=True):
            await w.sender.close()
            await pool.close()
    assert sum(sent) == 30 and all(sent), sent  # both took part
    assert receiver.count() - before == 30
    assert sorted(r.headers["webhook-id"] for r in receiver.received[before:]) == sorted(ids)
    statuses = await conn.fetch(
        "SELECT status, attempts FROM webhook_deliveries WHERE id = ANY($1::uuid[])", ids
    )
    assert {(r["status"], r["attempts"]) for r in statuses} == {("delivered", 1)}


async def test_an_attempt_cut_off_mid_send_is_followed_by_the_next_with_the_same_id(
    api: Api, channel: AbstractChannel, conn: asyncpg.Connection, receiver: Receiver
) -> None:
    (delivery_id,) = await pending_deliveries(api, channel, conn, receiver.url, 1)
    pool = api.app.state.pool
    # A worker claims attempt 1 with a short lease and dies before sending or recording.
    (claimed,) = await db.claim(pool, 10, lease_seconds=0.3)
    assert (str(claimed["id"]), claimed["attempts"]) == (delivery_id, 1)
    assert await db.claim(pool, 10, lease_seconds=0.3) == []  # leased: nobody else takes it
    worker = loop_for(api, pool)
    try:

        async def next_attempt_sent() -> bool:
            await worker.deliver_once()
            return bool(receiver.of(delivery_id))

        await until(next_attempt_sent, what="the next attempt after the lease")
    finally:
        await worker.sender.close()
    item = await latest(api)
    assert (item["id"], item["status"], item["attempts"]) == (delivery_id, "delivered", 2)
    first, second = item["history"]
    assert first["attempt"] == 1 and first["finished_at"] is None and first["error"] is None
    assert second["attempt"] == 2 and second["status_code"] == 204
    assert len(receiver.of(delivery_id)) == 1
    # Had the first worker been slow rather than dead, its late outcome goes into attempt 1's
    # history, and the delivery stays as attempt 2 left it.
    assert not await db.record(pool, claimed["id"], 1, "failed", None, "late", None)
    item = await latest(api)
    assert (item["status"], item["attempts"], item["last_status_code"]) == ("delivered", 2, 204)
    assert item["history"][0]["error"] == "late"


async def latest(api: Api) -> dict[str, Any]:
    r = await api.client.get(
        "/api/v1/webhooks/deliveries", headers=api.auth("olivia"), params={"limit": 1}
    )
    return dict(r.json()["items"][0])
