"""The outbox relay against the real PostgreSQL and RabbitMQ: rows are settled one by one, so
a row that can never be published neither blocks the rows behind it nor makes them go out
twice; it is parked after its attempts, and its task fails with ``publish_failed``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest
from aio_pika.abc import AbstractChannel
from support.api import Api, running_api, settings_for
from support.services import own_prefix
from support.waiting import until

ATTEMPTS = 3


@pytest.fixture
def prefix() -> Iterator[str]:
    with own_prefix("outbox") as name:
        yield name


async def snapshot(api: Api, text: str) -> dict[str, Any]:
    room = await api.room()
    await api.post_messages(room, [text])
    r = await api.snapshot(room)
    assert r.status_code == 202, r.text
    return dict(r.json())


async def task(api: Api, accepted: dict[str, Any]) -> dict[str, Any]:
    r = await api.client.get(f"/api/v1/tasks/{accepted['task_id']}", headers=api.auth("olivia"))
    return dict(r.json())


async def jobs_waiting(api: Api, channel: AbstractChannel) -> int:
    queue = await channel.declare_queue(api.settings.topology.jobs_queue, passive=True)
    return queue.declaration_result.message_count or 0


async def parked_total(api: Api) -> float:
    text = (await api.client.get("/metrics")).text
    for line in text.splitlines():
        if line.startswith("snapshot_api_outbox_parked_total "):
            return float(line.split()[1])
    raise AssertionError("snapshot_api_outbox_parked_total is not exported")


async def until_parked(db: asyncpg.Connection, row_id: int) -> asyncpg.Record:
    async def probe() -> asyncpg.Record | None:
        row = await db.fetchrow(
            "SELECT attempts, last_error, parked_at FROM outbox WHERE id = $1", row_id
        )
        return row if row is not None and row["parked_at"] is not None else None

    return await until(probe, timeout=30, what=f"outbox row {row_id} parked")


async def test_an_unroutable_row_is_parked_and_blocks_nothing_behind_it(
    database_url: str, prefix: str, tmp_path: Any, db: asyncpg.Connection, channel: AbstractChannel
) -> None:
    settings = settings_for(database_url, prefix, tmp_path, outbox_max_attempts=ATTEMPTS)
    async with running_api(settings) as api:
        before = await parked_total(api)
        first = await snapshot(api, "published before the blocker")
        await until(
            lambda: _equals(jobs_waiting(api, channel), 1), what="the first job in render.jobs"
        )
        # A row nothing can route (as if its queue were gone), ahead of the next snapshot's.
        blocker = await db.fetchval(
            "INSERT INTO outbox (task_id, routing_key, body) VALUES ($1, 'nowhere', '\\x7b7d')"
            " RETURNING id",
            first["task_id"],
        )
        second = await snapshot(api, "behind the blocker")
        row = await until_parked(db, blocker)
        assert row["attempts"] == ATTEMPTS and "refused" in row["last_error"], dict(row)
        # The second job went out once, although the blocker failed three rounds after it.
        assert await jobs_waiting(api, channel) == 2
        assert await db.fetchval("SELECT count(*) FROM outbox WHERE parked_at IS NULL") == 0
        failed = await task(api, first)
        assert failed["status"] == "failed" and failed["error"]["code"] == "publish_failed"
        assert (await task(api, second))["status"] == "queued"
        assert await parked_total(api) == before + 1
        await snapshot(api, "after the blocker was parked")
        await until(lambda: _equals(jobs_waiting(api, channel), 3), what="the third job")


async def test_a_job_larger_than_the_broker_takes_is_parked_at_once(
    database_url: str, prefix: str, tmp_path: Any, db: asyncpg.Connection, channel: AbstractChannel
) -> None:
    settings = settings_for(
        database_url, prefix, tmp_path, outbox_max_attempts=ATTEMPTS, outbox_max_message_bytes=1024
    )
    async with running_api(settings) as api:
        big = await snapshot(api, os.urandom(4096).hex())  # gzip cannot squeeze it under 1 KiB
        row_id = await db.fetchval("SELECT id FROM outbox WHERE task_id = $1", big["task_id"])
        assert row_id is not None
        row = await until_parked(db, row_id)
        assert row["attempts"] == 1 and "more than 1024" in row["last_error"], dict(row)
        failed = await task(api, big)
        assert failed["status"] == "failed" and failed["error"]["code"] == "publish_failed"
        assert await jobs_waiting(api, channel) == 0


async def _equals(count: Any, expected: int) -> bool:
    return bool(await count == expected)
