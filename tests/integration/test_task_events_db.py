"""Migration 0007's triggers, as the API's restricted role runs them: every path that moves a
task (a status event, the reaper) numbers the change and NOTIFYs ``task_events``; a stale or
duplicate event, or an update that moves nothing a client sees, announces nothing."""

from __future__ import annotations

import asyncio
import datetime as dt

import asyncpg
import pytest
from snapshot_api.services.reaper import Reaper
from snapshot_api.services.tasks import apply_event
from snapshot_shared.messages import StatusEvent
from support.api import running_api, settings_for


@pytest.fixture
async def api(database_url, queue_prefix, tmp_path):
    settings = settings_for(database_url, queue_prefix, tmp_path, reaper_interval_seconds=3600)
    async with running_api(settings) as api:  # its own reaper runs once, at start
        yield api


@pytest.fixture
async def notifications(database_url):
    """Payloads on ``task_events``, in arrival order, from a LISTEN connection of the test."""
    queue: asyncio.Queue[str] = asyncio.Queue()
    conn = await asyncpg.connect(database_url)
    await conn.add_listener("task_events", lambda *args: queue.put_nowait(args[3]))
    try:
        yield queue
    finally:
        await conn.close()


def _event(created: dict, name: str, progress: int) -> StatusEvent:
    return StatusEvent(
        task_id=created["task_id"],
        snapshot_id=created["snapshot_id"],
        event=name,
        progress=progress,
        phase=name,
        at=dt.datetime.now(dt.UTC),
    )


async def _next(queue: asyncio.Queue[str]) -> str:
    return await asyncio.wait_for(queue.get(), 30)  # a failure bound; NOTIFY takes ms


async def test_changes_are_numbered_and_announced_and_no_ops_are_not(api, notifications):
    room = await api.room()
    await api.post_messages(room, ["hello"])
    created = (await api.snapshot(room)).json()
    task = created["task_id"]
    pool = api.app.state.pool  # sessions run as snapshot_api (SET ROLE), like production

    assert await apply_event(pool, _event(created, "started", 5))
    assert await _next(notifications) == f"{task}:2"
    assert not await apply_event(pool, _event(created, "started", 5))  # duplicate: no-op
    assert not await apply_event(pool, _event(created, "progress", 3))  # stale: no-op
    async with pool.acquire() as conn:  # moves nothing a client sees: no event either
        await conn.execute(
            "UPDATE tasks SET deadline = now() - interval '1 second' WHERE id = $1::uuid", task
        )
    # The next notification is the reaper's failure, numbered 3: nothing came in between.
    assert await Reaper(pool, 60).reap_once() == 1
    assert await _next(notifications) == f"{task}:3"
    row = await pool.fetchrow(
        "SELECT status, error_code, event_seq FROM tasks WHERE id = $1::uuid", task
    )
    assert dict(row) == {"status": "failed", "error_code": "deadline_exceeded", "event_seq": 3}
    assert notifications.empty()
