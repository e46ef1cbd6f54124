"""Downloads against the shared store: one re-render for concurrent misses, a PDF hashed once
for all its Range requests, each download recorded as a use."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import os
import uuid

import pytest
from snapshot_api.services import artifacts
from snapshot_api.services.tasks import apply_event
from snapshot_shared import store
from snapshot_shared.messages import Artifact, StatusEvent
from support.api import running_api, settings_for
from support.pdf import fake_pdf
from support.waiting import until

NO_BROKER = "amqp://guest:guest@127.0.0.1:1/"  # jobs stay in the outbox: nothing consumes them


@pytest.fixture
async def api(database_url, queue_prefix, tmp_path):
    settings = settings_for(database_url, queue_prefix, tmp_path, amqp_url=NO_BROKER)
    async with running_api(settings, wait_for_broker=False) as api:
        yield api


async def completed_snapshot(api, db, key: str, store_it: bool = True) -> tuple[str, bytes]:
    """A completed snapshot whose artifact is ``key`` (its PDF stored there unless
    ``store_it`` is false); returns its download URL and its PDF."""
    room = await api.room("olivia", "Store room")
    await api.post_messages(room, ["one"])
    body = (await api.snapshot(room)).json()
    pdf = fake_pdf(body["content_hash"], filler=b"x" * 5000)
    if store_it:
        path = store.pdf_path(api.settings.store_dir, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(pdf)
    event = StatusEvent(
        task_id=body["task_id"],
        snapshot_id=body["snapshot_id"],
        event="completed",
        progress=100,
        phase="completed",
        cache="miss",
        at=dt.datetime.now(dt.UTC),
        artifact=Artifact(
            key=key, bytes=len(pdf), pages=1, pdf_sha256=hashlib.sha256(pdf).hexdigest()
        ),
    )
    assert await apply_event(db, event)
    return f"/api/v1/snapshots/{body['snapshot_id']}/download", pdf


async def lock_waiters(db, count: int) -> bool:
    await db.execute("SELECT pg_stat_clear_snapshot()")  # else frozen for the transaction
    waiting = await db.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
    )
    return bool(waiting >= count)


async def open_tasks(db, url: str) -> int:
    snapshot_id = uuid.UUID(url.split("/")[4])
    return int(
        await db.fetchval(
            "SELECT count(*) FROM tasks"
            " WHERE snapshot_id = $1 AND status IN ('queued', 'rendering')",
            snapshot_id,
        )
    )


async def test_concurrent_downloads_of_a_missing_pdf_enqueue_one_rerender(api, db):
    url, _ = await completed_snapshot(api, db, hashlib.sha256(b"gone").hexdigest(), False)
    assert await open_tasks(db, url) == 0
    headers = api.auth("olivia")

    # Both requests are held at the manifest look-up (the last step before enqueueing), so
    # they overlap for certain; then they are let go together.
    async with db.transaction():
        await db.execute("LOCK TABLE manifests IN ACCESS EXCLUSIVE MODE")
        requests = [asyncio.create_task(api.client.get(url, headers=headers)) for _ in range(2)]
        await until(lambda: lock_waiters(db, 2), what="both downloads waiting on a lock")
    answers = await asyncio.gather(*requests)

    assert [r.status_code for r in answers] == [503, 503]
    assert {r.json()["code"] for r in answers} == {"artifact_missing"}
    assert await open_tasks(db, url) == 1
    outbox = await db.fetchval(
        "SELECT count(*) FROM outbox o JOIN tasks t ON t.id = o.task_id WHERE t.snapshot_id = $1",
        uuid.UUID(url.split("/")[4]),
    )
    assert outbox == 2  # the original job and one re-render


async def test_a_download_of_a_present_pdf_enqueues_nothing(api, db):
    key = hashlib.sha256(b"present").hexdigest()
    url, pdf = await completed_snapshot(api, db, key)

    assert store.last_use(store.uses_root(api.settings.store_dir), key) is None

    r = await api.client.get(url, headers=api.auth("olivia"))
    part = await api.client.get(url, headers={**api.auth("olivia"), "Range": "bytes=0-7"})

    assert r.status_code == 200 and r.content == pdf
    assert part.status_code == 206 and part.content == pdf[:8]
    assert await open_tasks(db, url) == 0
    # the download counts as a use for the renderers' LRU eviction
    assert store.last_use(store.uses_root(api.settings.store_dir), key) is not None


async def test_range_requests_hash_the_pdf_once_and_a_later_corruption_is_caught(
    api, db, monkeypatch
):
    monkeypatch.setattr(artifacts.VERIFIED, "settle_seconds", 0)  # the file was just written
    key = hashlib.sha256(b"ranges").hexdigest()
    url, pdf = await completed_snapshot(api, db, key)
    path = store.pdf_path(api.settings.store_dir, key)
    os.utime(path, (1_000_000, 1_000_000))  # so that any later write moves the mtime
    headers = api.auth("olivia")
    hashed = artifacts.VERIFIED.hashed

    for start in range(0, 4000, 1000):
        part = await api.client.get(
            url, headers={**headers, "Range": f"bytes={start}-{start + 99}"}
        )
        assert part.status_code == 206 and part.content == pdf[start : start + 100]

    assert artifacts.VERIFIED.hashed == hashed + 1
    with path.open("r+b") as f:  # bit rot through the file system: same size, same inode
        f.seek(2000)
        f.write(b"!")
    broken = await api.client.get(url, headers={**headers, "Range": "bytes=0-99"})
    assert broken.status_code == 503 and broken.json()["code"] == "artifact_missing"
    assert artifacts.VERIFIED.hashed == hashed + 2
    assert await open_tasks(db, url) == 1  # re-rendered from the stored payload
