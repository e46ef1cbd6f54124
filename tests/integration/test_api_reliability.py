"""Reaper and concurrent Idempotency-Key requests, against the real PostgreSQL and RabbitMQ."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from support.api import running_api, settings_for
from support.waiting import until


@pytest.fixture
async def api(database_url, queue_prefix, tmp_path):
    settings = settings_for(
        database_url, queue_prefix, tmp_path, task_deadline_seconds=5, reaper_interval_seconds=0.2
    )
    async with running_api(settings) as api:
        yield api


async def test_reaper_fails_tasks_past_their_deadline(api):
    # No renderer consumes this prefix: without the reaper the task would stay queued forever.
    room = await api.room()
    await api.post_messages(room, ["never rendered"])
    accepted = (await api.snapshot(room)).json()

    async def failed():
        r = await api.client.get(f"/api/v1/tasks/{accepted['task_id']}", headers=api.auth("olivia"))
        return r.json() if r.json()["status"] == "failed" else None

    task = await until(failed, timeout=30, what="the reaper")
    assert task["error"]["code"] == "deadline_exceeded"
    snap = (
        await api.client.get(
            f"/api/v1/snapshots/{accepted['snapshot_id']}", headers=api.auth("olivia")
        )
    ).json()
    assert snap["status"] == "failed" and snap["error"]["code"] == "deadline_exceeded"


async def test_concurrent_requests_with_one_idempotency_key_make_one_snapshot(api):
    room = await api.room()
    await api.post_messages(room, ["once"])
    answers = await asyncio.gather(
        *(api.snapshot(room, headers={"Idempotency-Key": "same-key"}) for _ in range(8))
    )
    assert {a.status_code for a in answers} == {202}
    assert len({a.json()["snapshot_id"] for a in answers}) == 1
    assert len({a.json()["task_id"] for a in answers}) == 1
    other_user = await api.snapshot(room, user="olivia", headers={"Idempotency-Key": "k2"})
    assert other_user.json()["snapshot_id"] != answers[0].json()["snapshot_id"]
    conn = await asyncpg.connect(api.settings.database_dsn)
    try:
        count = await conn.fetchval("SELECT count(*) FROM snapshots WHERE room_id = $1::uuid", room)
    finally:
        await conn.close()
    assert count == 2


async def test_idempotency_keys_are_scoped_per_user(api):
    room = await api.room()
    await api.add_member(room, "eddie", "editor")
    await api.post_messages(room, ["scoped"])
    mine = await api.snapshot(room, user="olivia", headers={"Idempotency-Key": "shared"})
    theirs = await api.snapshot(room, user="eddie", headers={"Idempotency-Key": "shared"})
    assert mine.status_code == theirs.status_code == 202
    assert mine.json()["snapshot_id"] != theirs.json()["snapshot_id"]
