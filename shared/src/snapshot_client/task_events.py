"""Following a task over its event stream (``GET /api/v1/tasks/{id}/events``): open it, read
``Task`` values from its ``progress`` / ``completed`` / ``failed`` events, and open it again
with ``Last-Event-ID`` when it drops before the final one. ``Client.events`` is this."""

from __future__ import annotations

import json
import time
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx

from snapshot_client.calls import API
from snapshot_client.errors import (
    ApiUnreachable,
    EventStreamUnusable,
    WaitTimeout,
    problem_from,
)
from snapshot_client.models import Task
from snapshot_client.sse import EventStreamParser, ServerEvent

RECONNECTS = 3  # dropped streams in a row (no new state in between) before giving up
RETRY_SECONDS = 1.0  # the pause before reconnecting until the server sends `retry:`
RETRY_MAX_SECONDS = 30.0  # a larger `retry:` is capped to this
IDLE_SECONDS = 60.0  # not a byte for this long, not even a heartbeat: the stream is dead
TASK_EVENTS = frozenset({"progress", "completed", "failed"})
pause = time.sleep  # between connections; the unit tests record it instead of waiting
_READ_TIMED_OUT = "no data on the event stream, not even a heartbeat"


@dataclass
class Deadline:
    """When a wait for ``task_id`` runs out (``end`` on the monotonic clock; ``None``: never)."""

    task_id: str
    timeout: float | None

    def __post_init__(self) -> None:
        self.end = None if self.timeout is None else time.monotonic() + self.timeout

    def remaining(self) -> float | None:
        return None if self.end is None else self.end - time.monotonic()

    def error(self) -> WaitTimeout:
        return WaitTimeout(f"task {self.task_id} not finished after {self.timeout} s")

    def check(self, ahead: float = 0.0) -> None:
        """Raise ``WaitTimeout`` if the wait runs out within ``ahead`` seconds."""
        left = self.remaining()
        if left is not None and left <= ahead:
            raise self.error()


@dataclass
class _Resume:
    """What survives from one connection to the next."""

    last_event_id: str | None
    pause: float = RETRY_SECONDS
    connected: bool = False  # a stream was opened once: later connection errors are drops
    drops: int = 0  # in a row, without a new state


def follow_events(
    http: httpx.Client,
    task_id: str,
    last_event_id: str | None,
    deadline: Deadline,
    *,
    reconnects: int = RECONNECTS,
    idle_timeout: float = IDLE_SECONDS,
) -> Generator[Task, None, None]:
    """The states the stream sends, to the terminal one (see ``Client.events``)."""
    resume = _Resume(last_event_id)
    while True:
        left = deadline.remaining()
        read = idle_timeout if left is None else min(idle_timeout, left)
        if read <= 0:
            raise deadline.error()
        parser = EventStreamParser()
        dropped = yield from _connection(http, task_id, resume, parser, read, deadline)
        if dropped == _READ_TIMED_OUT and read < idle_timeout:
            raise deadline.error()  # the read timeout was the wait's own
        if dropped is None:
            return
        resume.drops += 1
        if resume.drops > reconnects:
            raise EventStreamUnusable(f"{dropped} ({resume.drops} times in a row)")
        if parser.retry_ms is not None:
            resume.pause = min(parser.retry_ms / 1000, RETRY_MAX_SECONDS)
        deadline.check(ahead=resume.pause)
        pause(resume.pause)


def _connection(
    http: httpx.Client,
    task_id: str,
    resume: _Resume,
    parser: EventStreamParser,
    read_timeout: float,
    deadline: Deadline,
) -> Generator[Task, None, str | None]:
    """One stream: yields its states; returns ``None`` when the task's end was reached (its
    final event, or a 204), else why the stream dropped."""
    try:
        with _open(http, task_id, resume.last_event_id, read_timeout) as response:
            resume.connected = True
            if response.status_code == 204:
                return None
            for chunk in response.iter_bytes():
                for event in parser.feed(chunk):
                    resume.last_event_id = event.last_event_id or resume.last_event_id
                    if event.event not in TASK_EVENTS:
                        continue
                    task = _task_of(event)
                    resume.drops = 0
                    yield task
                    if task.terminal:
                        return None
                resume.last_event_id = parser.last_event_id or resume.last_event_id
                deadline.check()
        return "the event stream ended before the task's final state"
    except httpx.TransportError as exc:
        what = str(exc) or type(exc).__name__
        if isinstance(exc, httpx.ReadTimeout):
            return _READ_TIMED_OUT
        if not resume.connected:
            raise ApiUnreachable(f"{http.base_url}: {what}") from exc
        return f"the event stream broke: {what}"


@contextmanager
def _open(
    http: httpx.Client, task_id: str, last_event_id: str | None, read_timeout: float
) -> Iterator[httpx.Response]:
    """The stream request's response, once it is known to be an event stream (or a 204)."""
    headers = {"Accept": "text/event-stream", "Cache-Control": "no-store"}
    if last_event_id:
        headers["Last-Event-ID"] = last_event_id
    limits = http.timeout
    timeout = httpx.Timeout(
        connect=limits.connect, read=read_timeout, write=limits.write, pool=limits.pool
    )
    path = f"{API}/tasks/{task_id}/events"
    with http.stream("GET", path, headers=headers, timeout=timeout) as response:
        if response.status_code >= 400:
            response.read()
            raise problem_from(response.status_code, response.headers, response.content)
        kind = response.headers.get("content-type", "").partition(";")[0].strip().lower()
        if response.status_code != 204 and kind != "text/event-stream":
            raise EventStreamUnusable(
                f"{response.status_code} {kind or 'no content type'}, not an event stream"
            )
        yield response


def _task_of(event: ServerEvent) -> Task:
    try:
        return Task.from_json(json.loads(event.data))
    except (ValueError, KeyError, TypeError) as exc:
        raise EventStreamUnusable(f"an unreadable {event.event} event: {exc!r}") from None
