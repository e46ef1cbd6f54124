"""Status events are authentic (issue 13), against the real processes (API + renderer).

Anyone who can publish on the broker can send a ``completed`` event naming another room's
artifact; a room must still never serve another room's PDF. Each PDF is read back to prove
whose it is. A link planted in the store is refused too, even to an intact copy of the right
PDF, and the re-render that follows puts a regular file back.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aio_pika
import asyncpg
import httpx
import pytest
from snapshot_shared import store
from snapshot_shared.messages import Artifact, StatusEvent, encode
from snapshot_shared.topology import Topology
from support.metrics import scrape
from support.pdf import pdf_text
from support.services import AMQP_URL
from support.stack import Stack, running
from support.waiting import until_sync


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with running(renderers=0) as s:
        yield s


def _snapshot(stack: Stack, owner: str, room_name: str, body: str) -> dict[str, Any]:
    r = stack.call("POST", "/api/v1/rooms", owner, json={"name": room_name})
    assert r.status_code == 201, r.text
    room = r.json()["id"]
    r = stack.call("POST", f"/api/v1/rooms/{room}/messages", owner, json={"body": body})
    assert r.status_code == 201, r.text
    r = stack.call("POST", f"/api/v1/rooms/{room}/snapshots", owner)
    assert r.status_code == 202, r.text
    return {**r.json(), "owner": owner}


def _completed(stack: Stack, snap: dict[str, Any]) -> None:
    task = stack.wait_task(snap["task_id"], snap["owner"])
    assert task["status"] == "completed", task


def _download(stack: Stack, snap: dict[str, Any]) -> httpx.Response:
    return stack.call("GET", f"/api/v1/snapshots/{snap['snapshot_id']}/download", snap["owner"])


def _text(r: httpx.Response) -> str:
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf", r.text[:300]
    return pdf_text(r.content)[0]


def _artifact_key(stack: Stack, snap: dict[str, Any]) -> str:
    async def fetch() -> str:
        conn = await asyncpg.connect(stack.database_url)
        try:
            sid = uuid.UUID(snap["snapshot_id"])
            key = await conn.fetchval("SELECT artifact_key FROM snapshots WHERE id = $1", sid)
        finally:
            await conn.close()
        assert key, snap
        return str(key)

    return asyncio.run(fetch())


def _forge_completed(stack: Stack, victim: dict[str, Any], key: str, pdf: bytes) -> None:
    """What anyone with publish rights on the broker can send: the victim's task ids, another
    room's artifact (its real key, size and digest)."""
    event = StatusEvent(
        task_id=victim["task_id"],
        snapshot_id=victim["snapshot_id"],
        event="completed",
        progress=100,
        phase="completed",
        cache="disk",
        artifact=Artifact(
            key=key, bytes=len(pdf), pages=1, pdf_sha256=hashlib.sha256(pdf).hexdigest()
        ),
        renderer_id="mallory",
        at=dt.datetime.now(dt.UTC),
    )

    async def publish() -> None:
        connection = await aio_pika.connect(AMQP_URL)
        try:
            channel = await connection.channel(publisher_confirms=True)
            await channel.default_exchange.publish(
                aio_pika.Message(encode(event)[0], delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                routing_key=Topology(stack.prefix).status_queue,
                mandatory=True,
            )
        finally:
            await connection.close()

    asyncio.run(publish())


def _metric(stack: Stack, name: str, **labels: str) -> float:
    return scrape(stack.base + "/metrics", name, **labels)


def _renderer(stack: Stack) -> None:
    if not stack.renderers:
        stack.start_renderer()


def test_a_forged_completed_event_never_makes_a_room_serve_another_rooms_pdf(
    stack: Stack,
) -> None:
    _renderer(stack)
    bravo = _snapshot(stack, "bob", "Bravo room", "Bravo launch codes")
    _completed(stack, bravo)
    bravo_pdf = _download(stack, bravo)
    assert "Bravo launch codes" in _text(bravo_pdf)
    stack.stop_renderer(stack.renderers[0])  # Alpha's job waits: only the forged event comes

    alpha = _snapshot(stack, "alice", "Alpha room", "Alpha minutes")
    consumed = _metric(stack, "snapshot_api_status_events_total", event="completed")
    _forge_completed(stack, alpha, _artifact_key(stack, bravo), bravo_pdf.content)
    until_sync(
        lambda: _metric(stack, "snapshot_api_status_events_total", event="completed") > consumed,
        what="the forged event to be consumed",
    )

    r = _download(stack, alpha)
    if r.status_code == 200:
        pytest.fail(f"Alpha's download served a PDF: {pdf_text(r.content)[0][:200]!r}")
    assert r.status_code == 409 and r.json()["code"] == "not_ready", r.text
    task = stack.call("GET", f"/api/v1/tasks/{alpha['task_id']}", "alice").json()
    assert task["status"] == "queued", task  # neither completed nor failed by the forgery
    refused = _metric(
        stack, "snapshot_api_artifacts_refused_total", stage="event", reason="content_hash"
    )
    assert refused == 1

    # The genuine render still completes the task, with Alpha's own PDF.
    stack.start_renderer()
    _completed(stack, alpha)
    text = _text(_download(stack, alpha))
    assert "Alpha minutes" in text and "Alpha room" in text
    assert "Bravo" not in text
    assert "Bravo launch codes" in _text(_download(stack, bravo))  # Bravo's is untouched


def _served_again(stack: Stack, snap: dict[str, Any]) -> httpx.Response:
    """Poll the download (each refusal asks for a re-render) until it answers 200."""

    def ok() -> httpx.Response | None:
        r = _download(stack, snap)
        if r.status_code == 503:
            assert r.json()["code"] == "artifact_missing", r.text
            return None
        return r

    return until_sync(ok, timeout=120, what="the PDF to be served again", interval=0.2)


def test_a_link_planted_in_the_store_is_refused_and_replaced(stack: Stack, tmp_path: Path) -> None:
    _renderer(stack)
    charlie = _snapshot(stack, "carol", "Charlie room", "Charlie notes")
    delta = _snapshot(stack, "dave", "Delta room", "Delta secrets")
    _completed(stack, charlie)
    _completed(stack, delta)
    path = store.pdf_path(stack.store, _artifact_key(stack, charlie))
    delta_path = store.pdf_path(stack.store, _artifact_key(stack, delta))
    genuine = path.read_bytes()
    refused = _metric(
        stack, "snapshot_api_artifacts_refused_total", stage="download", reason="symlink"
    )

    # A link to another room's PDF.
    path.unlink()
    path.symlink_to(delta_path)
    r = _download(stack, charlie)
    assert r.status_code == 503 and r.json()["code"] == "artifact_missing", r.status_code
    text = _text(_served_again(stack, charlie))
    assert "Charlie notes" in text and "Delta" not in text
    assert not path.is_symlink() and path.read_bytes() == genuine

    # A link to an intact copy of the room's own PDF, out of the store: every byte would pass,
    # but what a link points to can change at any time after it was checked.
    outside = tmp_path / "copy.pdf"
    outside.write_bytes(genuine)
    path.unlink()
    path.symlink_to(outside)
    r = _download(stack, charlie)
    assert r.status_code == 503 and r.json()["code"] == "artifact_missing", r.status_code
    assert "Charlie notes" in _text(_served_again(stack, charlie))
    assert not path.is_symlink() and path.read_bytes() == genuine
    after = _metric(
        stack, "snapshot_api_artifacts_refused_total", stage="download", reason="symlink"
    )
    assert after >= refused + 2
