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


def _event(created: dict, name: str, progress: int, **pieces: int) -> StatusEvent:
    return StatusEvent(
        task_id=created["task_id"],
        snapshot_id=created["snapshot_id"],
        event=name,
        progress=progress,
        phase=name,
        at=dt.datetime.now(dt.UTC),
        **pieces,
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


async def test_piece_counts_move_forward_and_announce_a_change(api, notifications):
    room = await api.room()
    await api.post_messages(room, ["hello"])
    created = (await api.snapshot(room)).json()
    task = created["task_id"]
    pool = api.app.state.pool

    async def pieces() -> tuple[int | None, int | None, int, int]:
        row = await pool.fetchrow(
            "SELECT pieces_done, pieces_total, progress, event_seq FROM tasks WHERE id = $1::uuid",
            task,
        )
        return row["pieces_done"], row["pieces_total"], row["progress"], row["event_seq"]

    assert await apply_event(pool, _event(created, "started", 5))
    assert await _next(notifications) == f"{task}:2"
    assert await pieces() == (None, None, 5, 2)
    assert await apply_event(pool, _event(created, "progress", 10, pieces_done=1, pieces_total=8))
    assert await _next(notifications) == f"{task}:3"
    # The same progress with one more piece done is news (a big render moves 1% per many
    # pieces); the same counts again, or fewer pieces done, are not.
    assert await apply_event(pool, _event(created, "progress", 10, pieces_done=2, pieces_total=8))
    assert await _next(notifications) == f"{task}:4"
    assert not await apply_event(pool, _event(created, "progress", 10, pieces_done=2))
    assert not await apply_event(pool, _event(created, "progress", 10, pieces_done=1))
    assert await pieces() == (2, 8, 10, 4)
    # More progress with fewer pieces done (a stale event mixed with a newer one) keeps the
    # pieces done; a failure keeps the counts it reached.
    assert await apply_event(pool, _event(created, "progress", 20, pieces_done=1))
    assert await _next(notifications) == f"{task}:5"
    assert await pieces() == (2, 8, 20, 5)
    assert await apply_event(pool, _event(created, "failed", 0))
    assert await _next(notifications) == f"{task}:6"
    assert await pieces() == (2, 8, 20, 6)

    # A completed task has all of its pieces done, whatever its last progress event said.
    created = (await api.snapshot(room, body={"options": {"title": "Again"}})).json()
    task = created["task_id"]
    assert await apply_event(pool, _event(created, "progress", 50, pieces_done=3, pieces_total=8))
    assert await _next(notifications) == f"{task}:2"
    assert await apply_event(pool, _event(created, "completed", 100))
    assert await _next(notifications) == f"{task}:3"
    assert await pieces() == (8, 8, 100, 3)
    assert notifications.empty()
