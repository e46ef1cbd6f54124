"""Artifacts bound to their content (issue 13), with the real PostgreSQL and RabbitMQ: which
``completed`` events may complete a task, and which stored files a download may serve.

Stored PDFs here are ``support.pdf.fake_pdf``: what the API checks (size, SHA-256, the content
hash in the trailer's /ID) without a render; ``tests/e2e/test_authentic_events.py`` does the
same with real renders.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import asyncpg
import pytest
import pytest_asyncio
from snapshot_api.services import artifacts, downloads
from snapshot_shared import store
from snapshot_shared.messages import Artifact, StatusEvent, encode
from support.api import Api, running_api, settings_for
from support.metrics import sample
from support.pdf import fake_pdf, stored_fake_pdf
from support.security import publish_completed
from support.services import AMQP_URL
from support.waiting import until

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def api(database_url, queue_prefix, tmp_path_factory) -> AsyncIterator[Api]:
    settings = settings_for(database_url, queue_prefix, tmp_path_factory.mktemp("store"))
    async with running_api(settings) as api:
        yield api


async def _snapshot(api: Api, owner: str, body: str) -> dict[str, Any]:
    room = await api.room(owner, f"Room of {owner}")
    await api.post_messages(room, [body], user=owner)
    r = await api.snapshot(room, user=owner)
    assert r.status_code == 202, r.text
    return {**r.json(), "owner": owner}


async def _metric(api: Api, name: str, **labels: str) -> float:
    return sample((await api.client.get("/metrics")).text, name, **labels)


async def _task(api: Api, snap: dict[str, Any]) -> dict[str, Any]:
    r = await api.client.get(f"/api/v1/tasks/{snap['task_id']}", headers=api.auth(snap["owner"]))
    assert r.status_code == 200, r.text
    return dict(r.json())


async def _publish_and_wait(api: Api, snap: dict[str, Any], key: str, pdf: bytes) -> None:
    """Publish a completed event for ``snap`` naming ``key`` and wait until it is consumed."""
    before = await _metric(api, "snapshot_api_status_events_total", event="completed")
    await publish_completed(api, snap, key, pdf)

    async def consumed() -> bool:
        now = await _metric(api, "snapshot_api_status_events_total", event="completed")
        return now > before

    await until(consumed, what="the completed event to be consumed")


async def _download(api: Api, snap: dict[str, Any], **headers: str) -> Any:
    return await api.client.get(
        f"/api/v1/snapshots/{snap['snapshot_id']}/download",
        headers={**api.auth(snap["owner"]), **headers},
    )


async def test_only_a_pdf_of_the_tasks_content_completes_it(api: Api) -> None:
    bravo = await _snapshot(api, "bob", "Bravo's message")
    bravo_artifact, bravo_pdf = stored_fake_pdf(api.settings.store_dir, bravo["content_hash"])
    await _publish_and_wait(api, bravo, bravo_artifact.key, bravo_pdf)
    assert (await _task(api, bravo))["status"] == "completed"
    alpha = await _snapshot(api, "alice", "Alpha's message")

    async def count(reason: str) -> float:
        return await _metric(
            api, "snapshot_api_artifacts_refused_total", stage="event", reason=reason
        )

    # The counter lives as long as the test process: count from here.
    before = {reason: await count(reason) for reason in ("content_hash", "missing", "size")}

    async def refused(reason: str) -> float:
        return await count(reason) - before[reason]

    async def still_pending() -> None:
        task = await _task(api, alpha)
        assert (task["status"], task["error"]) == ("queued", None)  # not completed, not failed
        r = await _download(api, alpha)
        assert r.status_code == 409 and r.json()["code"] == "not_ready", r.content[:200]

    # Bravo's real artifact, named for Alpha's task: refused, for its content.
    await _publish_and_wait(api, alpha, bravo_artifact.key, bravo_pdf)
    await still_pending()
    assert await refused("content_hash") == 1
    # A key with nothing stored under it.
    await _publish_and_wait(api, alpha, "0" * 64, fake_pdf(alpha["content_hash"]))
    await still_pending()
    assert await refused("missing") == 1
    # The right PDF, but the event lies about its size and digest.
    alpha_artifact, alpha_pdf = stored_fake_pdf(api.settings.store_dir, alpha["content_hash"])
    await _publish_and_wait(api, alpha, alpha_artifact.key, alpha_pdf + b"x")
    await still_pending()
    assert await refused("size") == 1

    # The genuine event still completes it, and the download is Alpha's PDF.
    await _publish_and_wait(api, alpha, alpha_artifact.key, alpha_pdf)
    assert (await _task(api, alpha))["status"] == "completed"
    r = await _download(api, alpha)
    assert r.status_code == 200 and r.content == alpha_pdf


async def test_a_completed_event_without_an_artifact_cannot_fail_a_genuine_task(api: Api) -> None:
    snap = await _snapshot(api, "carol", "Carol's message")
    before = await _metric(
        api, "snapshot_api_artifacts_refused_total", stage="event", reason="none"
    )
    await _publish_and_wait_without_artifact(api, snap)

    r = await api.client.get(
        f"/api/v1/snapshots/{snap['snapshot_id']}", headers=api.auth(snap["owner"])
    )
    assert (r.json()["status"], r.json()["error"]) == ("queued", None)
    after = await _metric(api, "snapshot_api_artifacts_refused_total", stage="event", reason="none")
    assert after == before + 1
    artifact, pdf = stored_fake_pdf(api.settings.store_dir, snap["content_hash"])
    await _publish_and_wait(api, snap, artifact.key, pdf)
    assert (await _task(api, snap))["status"] == "completed"


async def _publish_and_wait_without_artifact(api: Api, snap: dict[str, Any]) -> None:
    before = await _metric(api, "snapshot_api_status_events_total", event="completed")
    event = StatusEvent(
        task_id=snap["task_id"],
        snapshot_id=snap["snapshot_id"],
        event="completed",
        progress=100,
        at=dt.datetime.now(dt.UTC),
    )
    connection = await aio_pika.connect(AMQP_URL)
    try:
        channel = await connection.channel()
        await channel.default_exchange.publish(
            aio_pika.Message(encode(event)[0]), routing_key=api.settings.topology.status_queue
        )
    finally:
        await connection.close()

    async def consumed() -> bool:
        now = await _metric(api, "snapshot_api_status_events_total", event="completed")
        return now > before

    await until(consumed, what="the completed event to be consumed")


async def _completed_with_stored_pdf(
    api: Api, owner: str
) -> tuple[dict[str, Any], Artifact, bytes]:
    snap = await _snapshot(api, owner, f"{owner}'s message")
    artifact, pdf = stored_fake_pdf(api.settings.store_dir, snap["content_hash"])
    await _publish_and_wait(api, snap, artifact.key, pdf)
    assert (await _task(api, snap))["status"] == "completed"
    return snap, artifact, pdf


async def _open_rerenders(database_url: str, snap: dict[str, Any]) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM tasks WHERE snapshot_id = $1 AND status = 'queued'",
                uuid.UUID(snap["snapshot_id"]),
            )
        )
    finally:
        await conn.close()


async def test_a_file_swapped_after_verification_is_checked_again(
    api: Api, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(artifacts.VERIFIED, "settle_seconds", 0)  # the files were just written
    dave, dave_artifact, dave_pdf = await _completed_with_stored_pdf(api, "dave")
    erin, erin_artifact, erin_pdf = await _completed_with_stored_pdf(api, "erin")
    assert len(dave_pdf) == len(erin_pdf)  # a swap the size alone cannot reveal
    path = store.pdf_path(api.settings.store_dir, dave_artifact.key)
    old = (1_000_000, 1_000_000)
    os.utime(path, old)
    hashed = artifacts.VERIFIED.hashed
    for start in (0, 1000, 2000):
        r = await _download(api, dave, Range=f"bytes={start}-{start + 99}")
        assert r.status_code == 206 and r.content == dave_pdf[start : start + 100]
    assert artifacts.VERIFIED.hashed == hashed + 1  # one hash for all Range requests

    # Erin's PDF renamed over Dave's, with Dave's old mtime: a new inode.
    swapped = path.with_name(".swap.tmp")
    swapped.write_bytes(erin_pdf)
    os.utime(swapped, old)
    swapped.replace(path)
    r = await _download(api, dave, Range="bytes=0-99")
    assert r.status_code == 503 and r.json()["code"] == "artifact_missing", r.status_code
    assert artifacts.VERIFIED.hashed == hashed + 2
    assert await _open_rerenders(database_url, dave) == 1

    # Dave's PDF back, verified again; then Erin's bytes written in place, mtime set back.
    path.write_bytes(dave_pdf)
    assert (await _download(api, dave)).content == dave_pdf
    with path.open("r+b") as f:
        f.write(erin_pdf)
    os.utime(path, old)
    r = await _download(api, dave)
    assert r.status_code == 503 and r.json()["code"] == "artifact_missing", r.status_code
    assert (await _download(api, erin)).content == erin_pdf  # Erin's own is untouched


async def test_the_file_sent_is_the_file_verified_even_if_the_path_changes_in_between(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store entry is replaced right after the check and before a byte is sent (the use
    mark is touched in between): the answer is still the verified file, never a re-open."""
    frank, frank_artifact, frank_pdf = await _completed_with_stored_pdf(api, "frank")
    _, _, grace_pdf = await _completed_with_stored_pdf(api, "grace")
    path = store.pdf_path(api.settings.store_dir, frank_artifact.key)
    touch = downloads.USES.touch

    def swap_then_touch(uses: Any, key: str) -> None:
        if key == frank_artifact.key:
            swapped = path.with_name(".swap.tmp")
            swapped.write_bytes(grace_pdf)
            swapped.replace(path)
        touch(uses, key)

    monkeypatch.setattr(downloads.USES, "touch", swap_then_touch)
    r = await _download(api, frank)
    assert r.status_code == 200 and r.content == frank_pdf, r.content[-120:]
    monkeypatch.setattr(downloads.USES, "touch", touch)
    path.write_bytes(frank_pdf)
    r = await _download(api, frank, Range="bytes=0-9,-100")  # multipart, from the fd too
    assert r.status_code == 206 and r.headers["content-type"].startswith("multipart/byteranges")
    assert frank_pdf[-100:] in r.content and frank_pdf[:10] in r.content
    assert frank["content_hash"].encode() in r.content  # the tail names Frank's content
