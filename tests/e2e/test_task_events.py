"""Live task progress over Server-Sent Events (issue 14), against two real API processes on one
database. Status events are published on the first process's ``render.status`` (the tests play
the renderer); the second process has a queue prefix of its own, so whatever its clients see
reached it through PostgreSQL LISTEN/NOTIFY."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx
import pytest
from snapshot_shared.messages import Artifact
from support.pdf import stored_fake_pdf
from support.sse import Event, EventReader, TwoApis, publish, status_event
from support.waiting import until, until_sync

STREAMS_PER_USER = 3
HEARTBEAT_SECONDS = 0.5
WAIT_SECONDS = 60  # a failure bound only: events arrive in milliseconds


def stored(apis: TwoApis, created: dict[str, Any]) -> Artifact:
    """A stand-in PDF of the task's content in the stack's store: the API completes a task
    only with a PDF that carries its content hash."""
    return stored_fake_pdf(apis.store, created["content_hash"])[0]


@pytest.fixture(scope="module")
def apis() -> Iterator[TwoApis]:
    s = TwoApis(
        SNAPSHOT_API_SSE_STREAMS_PER_USER=str(STREAMS_PER_USER),
        SNAPSHOT_API_SSE_HEARTBEAT_SECONDS=str(HEARTBEAT_SECONDS),
    )
    try:
        s.start()
        yield s
    finally:
        s.stop()


def _task(apis: TwoApis, user: str = "olivia") -> dict[str, Any]:
    """A fresh room of ``user`` with one message and a queued snapshot: the 202 body."""
    room = apis.call("POST", "/api/v1/rooms", user, json={"name": "Live"}).json()["id"]
    r = apis.call("POST", f"/api/v1/rooms/{room}/messages", user, json={"body": "hi"})
    assert r.status_code == 201, r.text
    r = apis.call("POST", f"/api/v1/rooms/{room}/snapshots", user, json={})
    assert r.status_code == 202, r.text
    return {**r.json(), "room_id": room}


@asynccontextmanager
async def _stream(
    apis: TwoApis, task_id: str, user: str, base: str | None = None, **headers: str
) -> AsyncIterator[EventReader]:
    async with (
        httpx.AsyncClient(base_url=base or apis.other_base, timeout=60) as client,
        client.stream(
            "GET", f"/api/v1/tasks/{task_id}/events", headers={**apis.auth(user), **headers}
        ) as response,
    ):
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        yield EventReader(response)


async def _next(reader: EventReader) -> Event:
    """The next event; fails (instead of hanging on heartbeats) if none comes within a minute."""
    try:
        event = await asyncio.wait_for(reader.next(), WAIT_SECONDS)
    except TimeoutError:
        raise AssertionError(f"no event within {WAIT_SECONDS}s") from None
    assert event is not None, "the stream ended early"
    return event


def _metric(apis: TwoApis, name: str) -> float:
    """A metric of the second process (the one the streams are open on)."""
    text = httpx.get(f"{apis.other_base}/metrics", timeout=30).text
    [value] = [float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " ")]
    return value


def _task_status(apis: TwoApis, task_id: str, user: str = "olivia") -> dict[str, Any]:
    return dict(apis.call("GET", f"/api/v1/tasks/{task_id}", user).json())


async def test_events_reach_a_client_of_the_other_process_in_order(apis, channel):
    created = _task(apis)
    async with _stream(apis, created["task_id"], "olivia") as reader:
        first = await _next(reader)
        assert reader.retry is not None and reader.retry > 0
        assert (first.event, first.id, first.data["status"]) == ("progress", 1, "queued")
        assert first.data["task_id"] == created["task_id"]
        steps = [("started", 5), ("progress", 30), ("progress", 60), ("progress", 95)]
        for number, (name, progress) in enumerate(steps, start=2):
            await publish(channel, apis.status_queue, status_event(created, name, progress))
            event = await _next(reader)
            assert (event.event, event.id) == ("progress", number)
            assert (event.data["status"], event.data["progress"]) == ("rendering", progress)
        await publish(
            channel,
            apis.status_queue,
            status_event(created, "completed", 100, cache="miss", artifact=stored(apis, created)),
        )
        final = await _next(reader)
        assert (final.event, final.id) == ("completed", len(steps) + 2)
        assert (final.data["status"], final.data["progress"], final.data["cache"]) == (
            "completed",
            100,
            "miss",
        )
        assert await reader.next() is None  # the stream ends after the final event
    assert _task_status(apis, created["task_id"])["status"] == "completed"


async def test_an_idle_stream_sends_heartbeats(apis):
    created = _task(apis)
    async with _stream(apis, created["task_id"], "olivia") as reader:
        assert (await _next(reader)).id == 1
        for _ in range(2):  # comment lines, which an EventSource ignores
            line = await asyncio.wait_for(reader.heartbeat(), WAIT_SECONDS)
            assert line == ": heartbeat"


async def test_resume_with_last_event_id_sends_only_newer_state(apis, channel):
    created = _task(apis)
    task_id = created["task_id"]
    # one at a time: the consumer applies events concurrently, and a started(5) applied after
    # a progress(40) is stale and numbers nothing
    for name, progress in (("started", 5), ("progress", 40)):
        await publish(channel, apis.status_queue, status_event(created, name, progress))
        until_sync(
            lambda p=progress: _task_status(apis, task_id)["progress"] == p,
            30,
            f"progress {progress}",
        )

    async with _stream(apis, task_id, "olivia", **{"Last-Event-ID": "3"}) as reader:
        # id 3 (progress 40) is the current state: nothing is repeated, the next change is sent
        await publish(channel, apis.status_queue, status_event(created, "progress", 70))
        event = await _next(reader)
        assert (event.id, event.data["progress"]) == (4, 70)
    async with _stream(apis, task_id, "olivia", **{"Last-Event-ID": "1"}) as reader:
        event = await _next(reader)  # ids 2-4 were missed: the current state stands for them
        assert (event.event, event.id, event.data["progress"]) == ("progress", 4, 70)

    async with httpx.AsyncClient(base_url=apis.other_base, timeout=30) as client:
        bad = await client.get(
            f"/api/v1/tasks/{task_id}/events",
            headers={**apis.auth("olivia"), "Last-Event-ID": "4; drop"},
        )
    assert bad.status_code == 422 and bad.json()["code"] == "validation_error"


async def test_a_finished_task_answers_its_final_event_at_once(apis, channel):
    created = _task(apis)
    task_id = created["task_id"]
    failure = {"code": "render_timeout", "message": "Too slow", "retryable": False}
    await publish(channel, apis.status_queue, status_event(created, "failed", error=failure))
    until_sync(lambda: _task_status(apis, task_id)["status"] == "failed", 30, "the failure")

    async with _stream(apis, task_id, "olivia") as reader:
        events = await reader.until_final()
    assert [(e.event, e.id) for e in events] == [("failed", 2)]
    assert events[0].data["error"] == {"code": "render_timeout", "message": "Too slow"}
    async with httpx.AsyncClient(base_url=apis.other_base, timeout=30) as client:
        seen = await client.get(
            f"/api/v1/tasks/{task_id}/events", headers={**apis.auth("olivia"), "Last-Event-ID": "2"}
        )
    assert seen.status_code == 204  # nothing newer: an EventSource stops reconnecting


async def test_only_members_may_listen(apis):
    created = _task(apis)
    path = f"/api/v1/tasks/{created['task_id']}/events"
    apis.call(
        "PUT", f"/api/v1/rooms/{created['room_id']}/members/vera", "olivia", json={"role": "viewer"}
    )
    stranger = apis.call("GET", path, "mallory")  # a member of another room
    apis.call("POST", "/api/v1/rooms", "mallory", json={"name": "Mallory's"})
    assert stranger.status_code == 404
    assert stranger.headers["content-type"] == "application/problem+json"
    assert stranger.json()["code"] == "not_found"
    assert apis.call("GET", path).status_code == 401
    async with _stream(apis, created["task_id"], "vera") as reader:  # a viewer may
        assert (await _next(reader)).data["status"] == "queued"


async def test_a_removed_member_loses_the_stream_at_the_next_change(apis, channel):
    created = _task(apis)
    member = f"/api/v1/rooms/{created['room_id']}/members/rita"
    assert apis.call("PUT", member, "olivia", json={"role": "viewer"}).status_code == 201
    async with _stream(apis, created["task_id"], "rita") as reader:
        assert (await _next(reader)).id == 1
        assert apis.call("DELETE", member, "olivia").status_code == 204
        await publish(channel, apis.status_queue, status_event(created, "started", 5))
        assert await asyncio.wait_for(reader.next(), WAIT_SECONDS) is None  # ended, unsent
    assert _task_status(apis, created["task_id"])["progress"] == 5  # the change did happen


async def test_streams_per_user_are_bounded(apis):
    created = _task(apis, "uma")
    path = f"/api/v1/tasks/{created['task_id']}/events"
    async with (
        _stream(apis, created["task_id"], "uma"),
        _stream(apis, created["task_id"], "uma"),
        _stream(apis, created["task_id"], "uma") as third,
    ):
        await _next(third)
        async with httpx.AsyncClient(base_url=apis.other_base, timeout=30) as client:
            over = await client.get(path, headers=apis.auth("uma"))
        assert over.status_code == 429
        assert over.json()["code"] == "too_many_streams" and over.json()["limit"] == 3
        assert over.headers["retry-after"]
        assert _metric(apis, "snapshot_api_event_streams") >= STREAMS_PER_USER
        # another process keeps its own count (the bound is per worker process)
        async with _stream(apis, created["task_id"], "uma", base=apis.base) as elsewhere:
            await _next(elsewhere)

    async def freed() -> bool:  # the server notices the disconnects and frees the slots
        async with (
            httpx.AsyncClient(base_url=apis.other_base, timeout=30) as client,
            client.stream("GET", path, headers=apis.auth("uma")) as r,
        ):
            return r.status_code == 200

    assert await until(freed, 30, "the closed streams to be released")


def _raw_stream(apis: TwoApis, task_id: str, user: str) -> socket.socket:
    """A client that sends its request and then reads nothing, with a tiny receive buffer."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
    sock.connect(("127.0.0.1", apis.other_port))
    auth = apis.auth(user)["Authorization"]
    request = (
        f"GET /api/v1/tasks/{task_id}/events HTTP/1.0\r\nHost: api\r\nAuthorization: {auth}\r\n\r\n"
    )
    sock.sendall(request.encode())
    return sock


def _read_all(sock: socket.socket) -> list[tuple[int, str, dict[str, Any]]]:
    """The slow client finally reads: every event it was sent, as (id, event, data)."""
    sock.settimeout(60)
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    sock.close()
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head[:200]
    events = []
    for block in body.decode().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "data" in lines:
            events.append((int(lines["id"]), lines["event"], json.loads(lines["data"])))
    return events


async def test_a_slow_client_holds_up_neither_other_clients_nor_the_status_consumer(apis, channel):
    created = _task(apis, "sam")
    slow = _raw_stream(apis, created["task_id"], "sam")
    try:
        async with _stream(apis, created["task_id"], "sam") as fast:
            assert (await _next(fast)).id == 1
            # While the slow client has read nothing, every change reaches the fast client in
            # order, one by one: each is published only after the previous one was seen.
            for progress in range(1, 100):
                await publish(
                    channel, apis.status_queue, status_event(created, "progress", progress)
                )
                event = await _next(fast)
                assert (event.id, event.data["progress"]) == (progress + 1, progress)
            await publish(
                channel,
                apis.status_queue,
                status_event(created, "completed", artifact=stored(apis, created)),
            )
            assert (await _next(fast)).event == "completed"
        # ...and the status consumer applied everything meanwhile.
        assert _task_status(apis, created["task_id"], "sam")["status"] == "completed"
    finally:
        events = await asyncio.to_thread(_read_all, slow)
    ids = [i for i, _, _ in events]
    assert ids == sorted(set(ids)), ids  # in order, none twice, maybe fewer (skipped)
    assert events[-1][1] == "completed" and events[-1][0] == 101  # never the final one skipped


async def test_a_lost_listener_reconnects_and_streams_read_again(apis, channel):
    """A change committed while no process listens (its NOTIFY is lost) still reaches the
    client: after reconnecting, every stream re-reads its task."""
    created = _task(apis)
    name = apis.database_url.rsplit("/", 1)[1]
    admin = await asyncpg.connect(apis.database_url.rsplit("/", 1)[0] + "/postgres")
    watcher = await asyncpg.connect(apis.database_url)
    try:
        async with _stream(apis, created["task_id"], "olivia") as reader:
            assert (await _next(reader)).id == 1
            await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            cut = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = $1 AND application_name = 'snapshot-api-task-events'",
                name,
            )
            assert cut == 2  # one listener per API process
            await publish(
                channel,
                apis.status_queue,
                status_event(created, "completed", artifact=stored(apis, created)),
            )

            async def applied() -> bool:
                status = await watcher.fetchval(
                    "SELECT status FROM tasks WHERE id = $1::uuid", created["task_id"]
                )
                return bool(status == "completed")

            await until(applied, 30, "the event to be applied while nobody listens")
            await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
            final = await _next(reader)
            assert (final.event, final.id) == ("completed", 2)
        assert _metric(apis, "snapshot_api_task_events_reconnects_total") >= 1
    finally:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        await admin.close()
        await watcher.close()


async def test_shutdown_ends_open_streams_at_once(apis):
    """uvicorn waits for open responses before the lifespan's shutdown: streams must end by
    themselves when the process is told to stop, or it would wait out its graceful timeout
    and then cut them."""
    created = _task(apis)
    async with _stream(apis, created["task_id"], "olivia") as reader:
        assert (await _next(reader)).id == 1
        assert apis.other is not None
        apis.other.send_signal(signal.SIGTERM)
        assert await reader.next() is None  # a clean end of the body, not a cut connection
    # uvicorn re-raises the SIGTERM it handled once it has shut down: -15 is its clean exit
    assert await asyncio.to_thread(apis.other.wait, 60) in (0, -signal.SIGTERM)
    log = (apis.logs / "api2.log").read_text()
    assert "timeout graceful shutdown exceeded" not in log
    assert "Application shutdown complete" in log
