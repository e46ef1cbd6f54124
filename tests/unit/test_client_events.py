"""``Client.events`` and ``Client.follow`` against a scripted API (httpx's ``MockTransport``,
a hand-written fake at the client's transport seam): states from the event stream, resuming a
dropped stream with ``Last-Event-ID`` after the server's ``retry:`` pause, and falling back to
polling (keeping the states already seen) when the stream cannot be used."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from snapshot_client import Client, EventStreamUnusable, task_events
from snapshot_client.errors import Unauthorized
from support.client_api import TASK, task

EVENTS = f"/api/v1/tasks/{TASK}/events"
STATUS = f"/api/v1/tasks/{TASK}"
SSE = {"content-type": "text/event-stream; charset=utf-8"}


def event(seq: int, status: str, progress: int) -> bytes:
    name = "progress" if status in ("queued", "rendering") else status
    data = json.dumps(task(status, progress))
    return f"id: {seq}\nevent: {name}\ndata: {data}\n\n".encode()


class Dropping(httpx.SyncByteStream):
    """A stream body: its chunks, then a broken connection (``error``) or a clean end."""

    def __init__(self, *chunks: bytes, error: Exception | None = None) -> None:
        self.chunks = chunks
        self.error = error

    def __iter__(self) -> Iterator[bytes]:
        yield from self.chunks
        if self.error is not None:
            raise self.error


class Api:
    """Answers ``/events`` from ``streams`` (one per connection) and the task from ``polls``;
    records every request."""

    def __init__(
        self,
        streams: list[httpx.Response | Exception],
        polls: list[dict[str, Any]] | None = None,
    ) -> None:
        self.streams = iter(streams)
        self.polls = iter(polls or [])
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path == EVENTS:
            answer = next(self.streams)
            if isinstance(answer, Exception):
                raise answer
            return answer
        assert request.url.path == STATUS, request.url
        return httpx.Response(200, json=next(self.polls))

    def paths(self) -> list[str]:
        return ["events" if r.url.path == EVENTS else "task" for r in self.requests]

    def resumed_from(self) -> list[str | None]:
        return [r.headers.get("last-event-id") for r in self.requests if r.url.path == EVENTS]


def stream(*chunks: bytes, error: Exception | None = None) -> httpx.Response:
    return httpx.Response(200, headers=SSE, stream=Dropping(*chunks, error=error))


@pytest.fixture
def pauses(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The pauses between connections, recorded instead of waited."""
    seen: list[float] = []
    monkeypatch.setattr(task_events, "pause", seen.append)
    return seen


def client(api: Callable[[httpx.Request], httpx.Response]) -> Client:
    return Client("http://api.test", "tok", transport=httpx.MockTransport(api))


def follow(api: Api, **kw: Any) -> tuple[Any, list[tuple[str, int]]]:
    seen: list[tuple[str, int]] = []
    with client(api) as c:
        followed = c.follow(
            TASK, on_update=lambda t: seen.append((t.status, t.progress)), interval=0, **kw
        )
    return followed, seen


def test_events_yield_each_state_to_the_final_one_and_ask_for_an_event_stream() -> None:
    after_the_end = event(4, "rendering", 99)  # never read: the final event ends the stream
    body = [
        b"retry: 2000\n\n",
        event(1, "queued", 0),
        b": heartbeat\n\n",
        event(2, "rendering", 40),
    ]
    api = Api([stream(*body, event(3, "completed", 100), after_the_end)])
    with client(api) as c:
        states = [(t.status, t.progress, t.cache) for t in c.events(TASK)]
    assert states == [("queued", 0, None), ("rendering", 40, None), ("completed", 100, "miss")]
    (request,) = api.requests
    assert request.headers["accept"] == "text/event-stream"
    assert request.headers["authorization"] == "Bearer tok"
    assert "last-event-id" not in request.headers


def test_a_dropped_stream_is_resumed_with_last_event_id_after_the_retry_pause(
    pauses: list[float],
) -> None:
    api = Api([
        stream(b"retry: 1500\n\n", event(1, "queued", 0), event(2, "rendering", 40),
               error=httpx.ReadError("connection reset")),
        stream(event(5, "rendering", 80)),  # a clean end before the final event: a drop too
        stream(b"retry: 250\n\n", event(6, "completed", 100)),
    ])  # fmt: skip
    with client(api) as c:
        states = [t.progress for t in c.events(TASK, last_event_id="0")]
    assert states == [0, 40, 80, 100]
    assert api.resumed_from() == ["0", "2", "5"]
    assert pauses == [1.5, 1.5]  # the last retry: the server sent, kept between connections


def test_reconnects_are_bounded_and_a_new_state_resets_the_count(pauses: list[float]) -> None:
    reset = httpx.RemoteProtocolError("peer closed connection")
    api = Api([
        stream(b"retry: 10\n\n", event(1, "queued", 0), error=reset),
        stream(error=reset),
        stream(event(2, "rendering", 10), error=reset),  # a new state: the count starts again
        stream(error=reset),  # reconnected once,
        stream(error=reset),  # twice: dropped three times in a row, so given up
    ])  # fmt: skip
    seen: list[int] = []
    with client(api) as c, pytest.raises(EventStreamUnusable, match="3 times in a row"):
        for t in c.events(TASK, reconnects=2):
            seen.append(t.progress)
    assert seen == [0, 10]
    assert api.resumed_from() == [None, "1", "1", "2", "2"]
    assert pauses == [0.01] * 4


def test_a_huge_retry_is_capped(pauses: list[float]) -> None:
    api = Api([stream(b"retry: 86400000\n\n", event(1, "queued", 0)),
               stream(event(2, "failed", 0))])  # fmt: skip
    with client(api) as c:
        assert [t.status for t in c.events(TASK)] == ["queued", "failed"]
    assert pauses == [task_events.RETRY_MAX_SECONDS]


def test_no_content_means_nothing_newer() -> None:
    api = Api([httpx.Response(204)])
    with client(api) as c:
        assert list(c.events(TASK, last_event_id="9")) == []
    assert api.resumed_from() == ["9"]


def test_follow_over_events_needs_no_polling() -> None:
    api = Api(
        [stream(event(1, "queued", 0), event(2, "rendering", 50), event(3, "completed", 100))]
    )
    followed, seen = follow(api)
    assert (followed.via, followed.fallback, followed.task.status) == ("events", None, "completed")
    assert seen == [("queued", 0), ("rendering", 50), ("completed", 100)]
    assert api.paths() == ["events"]


TOO_MANY = httpx.Response(
    429,
    headers={"retry-after": "1", "content-type": "application/problem+json"},
    json={"status": 429, "code": "too_many_streams", "detail": "At most 1 open event streams"},
)
UNUSABLE: dict[str, httpx.Response | Exception] = {
    "429 too many streams": TOO_MANY,
    "404 from an older API": httpx.Response(404, json={"detail": "Not Found"}),
    "405 from an older API": httpx.Response(405, json={"detail": "Method Not Allowed"}),
    "503 shutting down": httpx.Response(503, json={"code": "unavailable", "detail": "bye"}),
    "JSON, not an event stream": httpx.Response(200, json=task("queued", 0)),
    "connection refused for the stream": httpx.ConnectError("connection refused"),
    "an unreadable event": stream(b"event: progress\ndata: {not json\n\n"),
}
EXPECTED_REASON = {
    "429 too many streams": "429 too_many_streams",
    "404 from an older API": "404",
    "405 from an older API": "405",
    "503 shutting down": "503 unavailable",
    "JSON, not an event stream": "application/json, not an event stream",
    "connection refused for the stream": "connection refused",
    "an unreadable event": "unreadable progress event",
}


@pytest.mark.parametrize("case", list(UNUSABLE))
def test_follow_falls_back_to_polling_when_the_stream_cannot_be_used(case: str) -> None:
    api = Api([UNUSABLE[case]], polls=[task("rendering", 30), task("completed", 100)])
    followed, seen = follow(api)
    assert (followed.via, followed.task.status) == ("polling", "completed")
    assert EXPECTED_REASON[case] in (followed.fallback or ""), followed.fallback
    assert seen == [("rendering", 30), ("completed", 100)]
    assert api.paths() == ["events", "task", "task"]


def test_fallback_after_repeated_drops_keeps_the_states_already_seen(pauses: list[float]) -> None:
    gone = httpx.ReadError("connection reset")
    api = Api(
        [stream(b"retry: 0\n\n", event(1, "queued", 0), event(2, "rendering", 40), error=gone)]
        + [stream(error=gone) for _ in range(task_events.RECONNECTS)],
        polls=[task("rendering", 40), task("rendering", 70), task("completed", 100)],
    )
    followed, seen = follow(api)
    assert followed.via == "polling" and "times in a row" in (followed.fallback or "")
    # the state polling found first was already shown from the stream: not shown twice
    assert seen == [("queued", 0), ("rendering", 40), ("rendering", 70), ("completed", 100)]
    assert len(pauses) == task_events.RECONNECTS


def test_a_stream_that_has_nothing_newer_falls_back_to_read_the_final_state() -> None:
    api = Api([httpx.Response(204)], polls=[task("completed", 100)])
    followed, seen = follow(api)
    assert (followed.via, followed.task.status, seen) == ("polling", "completed",
                                                          [("completed", 100)])  # fmt: skip


def test_refusals_polling_would_get_too_are_raised_without_polling() -> None:
    problem = {"status": 401, "code": "unauthorized", "detail": "Token expired"}
    api = Api([httpx.Response(401, json=problem)])
    with pytest.raises(Unauthorized, match="Token expired"):
        follow(api)
    assert api.paths() == ["events"]


def test_polling_only_when_asked() -> None:
    api = Api([], polls=[task("queued", 0), task("completed", 100)])
    followed, seen = follow(api, use_events=False)
    assert (followed.via, followed.fallback) == ("polling", None)
    assert api.paths() == ["task", "task"] and seen == [("queued", 0), ("completed", 100)]
