"""Live task progress as Server-Sent Events (``GET /api/v1/tasks/{id}/events``).

A change of a task row bumps its ``event_seq`` and NOTIFYs ``task_events`` (migration 0007);
each API worker's listener (``db/task_events.py``) hands ``(task id, seq)`` to this process's
``StreamHub``, which wakes the streams of that task. A stream then reads the row itself (with
the caller's authorization, like ``GET /api/v1/tasks/{id}``) and sends the state if it is newer
than what it sent last.

Each subscriber's queue is one slot deep: a wake flag and the last id it sent. Waking never
blocks and never allocates, so neither the listener nor the status consumer can be held up by
a client that does not read; such a client skips the intermediate states it was too slow for
and, because every read fetches the latest row, still gets the final one.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from uuid import UUID

import asyncpg

from snapshot_api.auth import User
from snapshot_api.db import tasks
from snapshot_api.db.pool import DATABASE_DOWN
from snapshot_api.errors import NotFound, TooManyStreams, Unavailable
from snapshot_api.metrics import EVENT_STREAMS
from snapshot_api.schemas import Task
from snapshot_api.services.tasks import TERMINAL, get_task_row, task_view

log = logging.getLogger(__name__)
RETRY_MS = 2000  # the reconnection delay a client's EventSource is told to use
EVENT_OF_STATUS = {
    "queued": "progress",
    "rendering": "progress",
    "completed": "completed",
    "failed": "failed",
}
ReadState = Callable[[], Awaitable[tuple[dict[str, Any], int]]]


class Subscription:
    """One open stream: which task, whose, the last event id sent, and a wake flag."""

    __slots__ = ("sent", "task_id", "user_id", "wake")

    def __init__(self, task_id: UUID, user_id: str, sent: int) -> None:
        self.task_id = task_id
        self.user_id = user_id
        self.sent = sent
        self.wake = asyncio.Event()

    def poke(self, seq: int | None) -> None:
        """Wake the stream for ``seq`` (``None``: re-read whatever it is)."""
        if seq is None or seq > self.sent:
            self.wake.set()


class StreamHub:
    """This worker process's open streams, by task id and by user."""

    def __init__(self, streams_per_user: int) -> None:
        self.streams_per_user = streams_per_user
        self.closing = False
        self._by_task: dict[UUID, set[Subscription]] = {}
        self._by_user: Counter[str] = Counter()

    def __len__(self) -> int:
        return sum(len(subs) for subs in self._by_task.values())

    def open(self, task_id: UUID, user_id: str, sent: int) -> Subscription:
        if self.closing:
            raise Unavailable("The API is shutting down; reconnect")
        if self._by_user[user_id] >= self.streams_per_user:
            raise TooManyStreams(
                f"At most {self.streams_per_user} open event streams per user",
                limit=self.streams_per_user,
            )
        sub = Subscription(task_id, user_id, sent)
        self._by_task.setdefault(task_id, set()).add(sub)
        self._by_user[user_id] += 1
        EVENT_STREAMS.inc()
        return sub

    def close(self, sub: Subscription) -> None:
        subs = self._by_task.get(sub.task_id)
        if subs is None or sub not in subs:
            return
        subs.discard(sub)
        if not subs:
            del self._by_task[sub.task_id]
        self._by_user[sub.user_id] -= 1
        EVENT_STREAMS.dec()
        if self._by_user[sub.user_id] <= 0:
            del self._by_user[sub.user_id]

    def notify(self, task_id: UUID, seq: int) -> None:
        """A task changed (its new ``event_seq``): wake its streams. Never blocks."""
        for sub in self._by_task.get(task_id, ()):
            sub.poke(seq)

    def resync(self) -> None:
        """Wake every stream to re-read its task: notifications may have been missed (the
        listener reconnected after losing its connection)."""
        for subs in self._by_task.values():
            for sub in subs:
                sub.poke(None)

    def shutdown(self) -> None:
        """End every stream promptly (the server is stopping) and refuse new ones."""
        self.closing = True
        self.resync()


def task_reader(pool: asyncpg.Pool, user: User, task_id: UUID) -> ReadState:
    """How a stream re-reads its task after the route authorized it: a member's role is checked
    again at every read (a removed member's stream ends at the next change), while an
    administrator's access was audited once, when the stream opened, not once per event."""

    async def read() -> tuple[dict[str, Any], int]:
        if user.is_admin:
            row = await tasks.get_with_room(pool, task_id)
            if row is None:
                raise NotFound("Task not found")
        else:
            row = await get_task_row(pool, user, task_id)
        return task_view(row), int(row["event_seq"])

    return read


def format_event(view: dict[str, Any], seq: int) -> str:
    """One SSE event: ``id`` = the task's event seq, ``data`` = the task view's JSON."""
    data = Task.model_validate(view).model_dump_json()
    return f"id: {seq}\nevent: {EVENT_OF_STATUS[view['status']]}\ndata: {data}\n\n"


async def event_stream(
    read: ReadState, sub: Subscription, hub: StreamHub, heartbeat_seconds: float
) -> AsyncIterator[str]:
    """The body of one stream: states newer than ``sub.sent`` as they happen, a comment line
    when idle for ``heartbeat_seconds``; ends after the final event, when the task goes away
    or the caller loses access, and when the hub shuts down. Always leaves the hub."""
    try:
        yield f"retry: {RETRY_MS}\n\n"
        while not hub.closing:
            sub.wake.clear()  # before the read: a change during the read wakes us again
            try:
                view, seq = await read()
            except NotFound:
                return
            except DATABASE_DOWN as exc:  # read again at the next heartbeat or resync
                log.warning("task events: cannot read the task (%s); trying again", exc)
                view, seq = {}, 0
            if seq > sub.sent:
                sub.sent = seq
                yield format_event(view, seq)
            if view.get("status") in TERMINAL:
                return
            while not sub.wake.is_set():
                try:
                    await asyncio.wait_for(sub.wake.wait(), heartbeat_seconds)
                except TimeoutError:
                    yield ": heartbeat\n\n"
                    if not view:
                        sub.wake.set()
    finally:
        hub.close(sub)
