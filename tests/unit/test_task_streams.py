"""The event-stream hub without a server: coalescing for slow readers, the per-user bound,
shutdown, the NOTIFY payload and the exit-signal chain."""

from __future__ import annotations

import asyncio
import datetime as dt
import signal
import uuid
from typing import Any

import pytest
from snapshot_api.db.task_events import parse_payload
from snapshot_api.errors import TooManyStreams, Unavailable
from snapshot_api.exit_signals import ExitSignals
from snapshot_api.services.task_streams import StreamHub, event_stream

TASK = uuid.uuid4()
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


class Row:
    """The task as a fake read sees it: every change bumps ``seq``; reads are counted."""

    def __init__(self) -> None:
        self.seq, self.progress, self.status, self.reads = 1, 0, "queued", 0

    def change(self, progress: int, status: str = "rendering") -> int:
        self.seq += 1
        self.progress, self.status = progress, status
        return self.seq

    async def read(self) -> tuple[dict[str, Any], int]:
        self.reads += 1
        view = {
            "task_id": TASK,
            "snapshot_id": TASK,
            "status": self.status,
            "progress": self.progress,
            "phase": self.status,
            "cache": None,
            "error": None,
            "created_at": NOW,
            "started_at": None,
            "completed_at": None,
        }
        return view, self.seq


def _ids(chunks: list[str]) -> list[int]:
    return [int(c.split("\n")[0].removeprefix("id: ")) for c in chunks if c.startswith("id:")]


async def test_a_reader_that_falls_behind_gets_the_latest_state_and_the_final_one():
    hub, row = StreamHub(streams_per_user=5), Row()
    sub = hub.open(TASK, "u", sent=0)
    stream = event_stream(row.read, sub, hub, heartbeat_seconds=60)
    assert (await anext(stream)).startswith("retry:")
    assert _ids([await anext(stream)]) == [1]
    for progress in range(1, 501):  # the client reads nothing meanwhile
        hub.notify(TASK, row.change(progress))  # returns at once: it only sets a flag
    latest = await anext(stream)
    assert _ids([latest]) == [501] and '"progress":500' in latest
    hub.notify(TASK, row.change(100, "completed"))
    final = await anext(stream)
    assert final.startswith("id: 502\nevent: completed\n")
    with pytest.raises(StopAsyncIteration):
        await anext(stream)
    assert row.reads == 3 and len(hub) == 0  # one read per wake-up, not one per change


async def test_notifications_of_what_was_sent_do_not_wake_the_stream():
    hub, row = StreamHub(streams_per_user=5), Row()
    sub = hub.open(TASK, "u", sent=0)
    stream = event_stream(row.read, sub, hub, heartbeat_seconds=60)
    await anext(stream), await anext(stream)  # retry, then id 1
    hub.notify(TASK, 1)  # a late duplicate of what the client has
    hub.notify(uuid.uuid4(), 99)  # another task
    assert not sub.wake.is_set()
    hub.resync()  # a reconnected listener: re-read, but send nothing older or equal
    assert sub.wake.is_set()
    hub.notify(TASK, row.change(10))
    assert _ids([await anext(stream)]) == [2]
    await stream.aclose()
    assert len(hub) == 0


async def test_heartbeats_while_idle_and_shutdown_ends_the_stream():
    hub, row = StreamHub(streams_per_user=5), Row()
    sub = hub.open(TASK, "u", sent=1)  # resumed: id 1 is not sent again
    stream = event_stream(row.read, sub, hub, heartbeat_seconds=0.01)
    await anext(stream)
    assert await anext(stream) == ": heartbeat\n\n"
    hub.shutdown()
    with pytest.raises(StopAsyncIteration):
        await anext(stream)
    with pytest.raises(Unavailable):
        hub.open(TASK, "u", sent=0)


def test_streams_per_user_bound_and_release():
    hub = StreamHub(streams_per_user=2)
    first, _second = hub.open(TASK, "u", 0), hub.open(uuid.uuid4(), "u", 0)
    with pytest.raises(TooManyStreams):
        hub.open(TASK, "u", 0)
    hub.open(TASK, "someone-else", 0)
    hub.close(first)
    hub.close(first)  # twice is harmless
    hub.open(TASK, "u", 0)
    assert len(hub) == 3


def test_notify_payload():
    assert parse_payload(f"{TASK}:42") == (TASK, 42)
    assert parse_payload("nonsense") is None
    assert parse_payload(f"{TASK}:x") is None


async def test_exit_signal_runs_callback_and_the_previous_handler():
    seen: list[str] = []
    original = signal.signal(signal.SIGTERM, lambda *_: seen.append("previous"))
    try:
        chain = ExitSignals(lambda: seen.append("callback"))
        chain.install()
        signal.raise_signal(signal.SIGTERM)
        await asyncio.sleep(0)  # the callback is scheduled on the loop
        assert seen == ["previous", "callback"]
        chain.remove()
        signal.raise_signal(signal.SIGTERM)
        await asyncio.sleep(0)
        assert seen == ["previous", "callback", "previous"]
    finally:
        signal.signal(signal.SIGTERM, original)
