"""``snapshot_client.Client`` against a scripted HTTP server (httpx's ``MockTransport``, a
hand-written fake at the transport seam): batching, idempotency keys, paging, waiting through
transient errors, and downloads that never leave a partial file."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from snapshot_client import ApiUnreachable, Client, ServerError, WaitTimeout
from snapshot_client.errors import Conflict
from support.client_api import SNAP, TASK, task

ROOM = "7d0f5a0e-2f64-4c38-9d1c-5b0d6a4a9a10"
PDF = b"%PDF-1.7\n" + b"x" * 100_000 + b"\n%%EOF\n"


def client(handler: Callable[[httpx.Request], httpx.Response]) -> Client:
    return Client("http://api.test", "tok", transport=httpx.MockTransport(handler))


def message(i: int) -> dict[str, Any]:
    return {
        "id": f"00000000-0000-4000-8000-{i:012d}",
        "room_id": ROOM,
        "author_id": "olivia",
        "author_name": "Olivia",
        "body": f"m{i}",
        "kind": "message",
        "created_at": "2026-01-02T03:04:05Z",
    }


def test_messages_go_in_batches_in_order_with_the_token() -> None:
    sizes: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == "Bearer tok"
        batch = json.loads(request.content)["messages"]
        start = sum(sizes)
        sizes.append(len(batch))
        assert [m["body"] for m in batch] == [f"m{start + i}" for i in range(len(batch))]
        return httpx.Response(201, json=[message(start + i) for i in range(len(batch))])

    seen: list[int] = []
    with client(handler) as api:
        created = api.add_messages(
            ROOM, [f"m{i}" for i in range(1201)], on_batch=lambda b: seen.append(len(b))
        )
    assert sizes == seen == [500, 500, 201]
    assert [m.body for m in created] == [f"m{i}" for i in range(1201)]


def test_snapshot_request_body_and_idempotency_key() -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(
            202,
            json={
                "snapshot_id": SNAP,
                "task_id": TASK,
                "status": "queued",
                "content_hash": "ab" * 32,
                "links": {"task": f"/api/v1/tasks/{TASK}"},
            },
        )

    with client(handler) as api:
        plain = api.create_snapshot(ROOM)
        keyed = api.create_snapshot(ROOM, options={"title": "Q4"}, idempotency_key="k-1")
    assert (plain.task_id, keyed.snapshot_id) == (TASK, SNAP)
    assert json.loads(sent[0].content) == {} and "idempotency-key" not in sent[0].headers
    assert json.loads(sent[1].content) == {"options": {"title": "Q4"}}
    assert sent[1].headers["idempotency-key"] == "k-1"


def test_listing_follows_the_cursor_and_stops_at_the_limit() -> None:
    def snapshot(i: int) -> dict[str, Any]:
        return {
            "id": f"00000000-0000-4000-8000-{i:012d}",
            "room_id": ROOM,
            "created_at": "2026-01-02T03:04:05Z",
            "status": "completed",
            "options": {"title": f"t{i}"},
            "artifact": None,
            "task": None,
        }

    def handler(request: httpx.Request) -> httpx.Response:
        cursor = int(request.url.params.get("cursor", "0"))
        limit = int(request.url.params["limit"])
        items = [snapshot(i) for i in range(cursor, min(cursor + limit, 7))]
        nxt = str(cursor + limit) if cursor + limit < 7 else None
        return httpx.Response(200, json={"items": items, "next_cursor": nxt})

    with client(handler) as api:
        assert [s.title for s in api.list_snapshots(ROOM)] == [f"t{i}" for i in range(7)]
        assert len(list(api.list_snapshots(ROOM, limit=3))) == 3


def scripted(answers: list[httpx.Response]) -> Callable[[httpx.Request], httpx.Response]:
    queue: Iterator[httpx.Response] = iter(answers)

    def handler(request: httpx.Request) -> httpx.Response:
        return next(queue)

    return handler


# The three tests below are about polling: ``use_events=False`` (test_client_events.py has
# the event stream and the fallback from it).
def test_wait_rides_out_a_503_and_reports_each_state() -> None:
    answers = [
        httpx.Response(503, json={"code": "unavailable", "detail": "PG"}),
        httpx.Response(200, json=task("queued", 0)),
        httpx.Response(200, json=task("rendering", 40)),
        httpx.Response(200, json=task("completed", 100)),
    ]
    seen: list[int] = []
    with client(scripted(answers)) as api:
        done = api.wait(
            TASK,
            on_update=lambda t: seen.append(t.progress),
            interval=0,
            backoff=0,
            use_events=False,
        )
    assert (done.status, done.cache, seen) == ("completed", "miss", [0, 40, 100])


def test_wait_gives_up_after_too_many_server_errors() -> None:
    answers = [httpx.Response(502, text="bad gateway")] * 6
    with client(scripted(answers)) as api, pytest.raises(ServerError):
        api.wait(TASK, interval=0, backoff=0, use_events=False)


def test_wait_times_out_on_a_task_that_never_ends() -> None:
    never = client(lambda r: httpx.Response(200, json=task("queued", 0)))
    with never as api, pytest.raises(WaitTimeout):
        api.wait(TASK, timeout=0.05, interval=0.02, use_events=False)


class Broken(httpx.SyncByteStream):
    """A PDF answer whose connection breaks after the first chunk."""

    def __iter__(self) -> Iterator[bytes]:
        yield PDF[:1000]
        raise httpx.ReadError("connection reset")


def pdf_answer(stream: httpx.SyncByteStream | None = None) -> httpx.Response:
    headers = {
        "content-type": "application/pdf",
        "etag": '"abc"',
        "content-disposition": "attachment; filename=\"plan.pdf\"; filename*=UTF-8''pl%C3%A4n.pdf",
    }
    if stream is not None:
        return httpx.Response(200, headers=headers, stream=stream)
    return httpx.Response(200, headers=headers, content=PDF)


def test_download_into_a_folder_keeps_the_offered_name(tmp_path: Path) -> None:
    with client(lambda r: pdf_answer()) as api:
        saved = api.download(SNAP, tmp_path)
    assert saved.path == tmp_path / "plän.pdf" and saved.path.read_bytes() == PDF
    assert (saved.bytes, saved.etag) == (len(PDF), '"abc"')
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plän.pdf"]


def test_a_broken_download_leaves_no_file(tmp_path: Path) -> None:
    target = tmp_path / "out.pdf"
    with client(lambda r: pdf_answer(Broken())) as api, pytest.raises(ApiUnreachable):
        api.download(SNAP, target)
    assert list(tmp_path.iterdir()) == []


def test_a_not_ready_download_is_a_conflict_and_writes_nothing(tmp_path: Path) -> None:
    problem = {"code": "not_ready", "detail": "Snapshot not ready", "status": 409}
    refusing = client(lambda r: httpx.Response(409, json=problem))
    with refusing as api, pytest.raises(Conflict) as caught:
        api.download(SNAP, tmp_path / "x.pdf")
    assert caught.value.code == "not_ready"
    assert list(tmp_path.iterdir()) == []
