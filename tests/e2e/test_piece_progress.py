"""Piece progress (issue 11) end to end: status events that count pieces, published on the real
``render.status`` of an API process (the test plays the renderer), reach the task resource, the
snapshot's task and the task's Server-Sent Events."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from support.pdf import stored_fake_pdf
from support.sse import Event, EventReader, publish, status_event
from support.stack import Stack, running

WAIT_SECONDS = 60  # a failure bound only: events arrive in milliseconds


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with running(renderers=0, workers=1) as s:
        yield s


async def _next(reader: EventReader) -> Event:
    try:
        event = await asyncio.wait_for(reader.next(), WAIT_SECONDS)
    except TimeoutError:
        raise AssertionError(f"no event within {WAIT_SECONDS}s") from None
    assert event is not None, "the stream ended early"
    return event


def _pieces(task: dict[str, Any]) -> tuple[int | None, int | None]:
    return task["pieces_done"], task["pieces_total"]


async def test_piece_counts_reach_the_task_its_snapshot_and_its_stream(stack, channel):
    room = stack.call("POST", "/api/v1/rooms", "olivia", json={"name": "Pieces"}).json()["id"]
    posted = stack.call("POST", f"/api/v1/rooms/{room}/messages", "olivia", json={"body": "hi"})
    assert posted.status_code == 201, posted.text
    created = stack.call("POST", f"/api/v1/rooms/{room}/snapshots", "olivia", json={}).json()
    status_queue = f"{stack.prefix}render.status"
    headers = stack.auth("olivia")
    async with (
        httpx.AsyncClient(base_url=stack.base, timeout=WAIT_SECONDS) as client,
        client.stream("GET", f"/api/v1/tasks/{created['task_id']}/events", headers=headers) as r,
    ):
        assert r.status_code == 200
        reader = EventReader(r)
        assert _pieces((await _next(reader)).data) == (None, None)  # queued: unknown
        # The same progress with one more piece done is news: a big render moves 1% per
        # many pieces.
        for progress, done in [(10, 1), (10, 2), (40, 5)]:
            event = status_event(created, "progress", progress, pieces_done=done, pieces_total=8)
            await publish(channel, status_queue, event)
            sent = await _next(reader)
            assert (sent.event, sent.data["progress"], _pieces(sent.data)) == (
                "progress",
                progress,
                (done, 8),
            )
        task = (await client.get(f"/api/v1/tasks/{created['task_id']}", headers=headers)).json()
        snap = await client.get(f"/api/v1/snapshots/{created['snapshot_id']}", headers=headers)
        assert _pieces(task) == _pieces(snap.json()["task"]) == (5, 8)

        artifact, _pdf = stored_fake_pdf(stack.store, created["content_hash"])
        done = status_event(created, "completed", 100, cache="miss", artifact=artifact)
        await publish(channel, status_queue, done)
        final = await _next(reader)
        assert (final.event, _pieces(final.data)) == ("completed", (8, 8))  # all done
