"""The render coordinator: memory, then disk, then one render per key, stored before returned.

The worker pool is a hand-written fake that returns a fixed PDF (optionally held on a gate, or
failing); the memory LRU, the disk store and the key locks are the real ones on ``tmp_path``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import uuid
from pathlib import Path
from typing import Any

import pytest
from snapshot_renderer.cache.disk import DiskStore
from snapshot_renderer.cache.lock import KeyLocks
from snapshot_renderer.cache.memory import CachedPdf, MemoryCache
from snapshot_renderer.coordinator import RenderCoordinator
from snapshot_renderer.errors import DeadlineExceeded, StoreError, WorkerCrashed
from snapshot_renderer.fair_queue import FairQueue
from snapshot_renderer.render.worker import RenderResult
from snapshot_shared.hashing import content_hash
from snapshot_shared.messages import RenderJob
from snapshot_shared.store import pdf_path
from support.waiting import until

PDF = b"%PDF-1.7\n" + b"fixed render output\n" * 40
KEY = hashlib.sha256(b"the render key").hexdigest()


class FakePool:
    """Returns ``PDF`` (or raises ``error``); with ``hold`` set, waits for ``gate`` first."""

    def __init__(self, *, error: Exception | None = None, hold: bool = False) -> None:
        self.calls = 0
        self.error = error
        self.hold = hold
        self.entered = asyncio.Event()
        self.gate = asyncio.Event()

    async def render(
        self,
        payload: dict[str, Any],
        options: dict[str, Any],
        template: str,
        hash_version: int = 1,
    ) -> RenderResult:
        self.calls += 1
        self.entered.set()
        if self.hold:
            await self.gate.wait()
        if self.error is not None:
            raise self.error
        return RenderResult(pdf=PDF, pages=3, seconds=0.25, pid=0, refused_fetches=0)


class Stored:
    """An ``on_stored`` callback that counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self) -> None:
        self.calls += 1


def make_job() -> RenderJob:
    payload: dict[str, Any] = {"room": {"name": "Coordinated"}, "messages": []}
    return RenderJob(
        task_id=uuid.uuid4(),
        snapshot_id=uuid.uuid4(),
        content_hash=content_hash(payload, {}, "snapshot"),
        options={},
        payload=payload,
        requested_at=dt.datetime.now(dt.UTC),
    )


@pytest.fixture
async def disk(tmp_path: Path) -> DiskStore:
    store = DiskStore(tmp_path / "store", max_bytes=10_000_000)
    await store.open()
    return store


def coordinator(pool: FakePool, disk: DiskStore, **kw: Any) -> RenderCoordinator:
    return RenderCoordinator(pool=pool, memory=MemoryCache(10_000_000), disk=disk, **kw)


def lock_file(disk: DiskStore, key: str = KEY) -> Path:
    return disk.root / ".locks" / f"{key}.lock"


async def test_a_miss_renders_stores_on_disk_and_in_memory(disk: DiskStore) -> None:
    pool, stored = FakePool(), Stored()
    coord = coordinator(pool, disk)

    assert await coord.lookup(KEY, verify_store=False) == (None, "miss")
    entry, cache, render_ms = await coord.render_once(KEY, make_job(), stored)

    assert (cache, render_ms, pool.calls, stored.calls) == ("miss", 250.0, 1, 1)
    assert entry == CachedPdf(PDF, 3, hashlib.sha256(PDF).hexdigest())
    assert await disk.read(KEY) == entry
    assert pdf_path(disk.root, KEY).read_bytes() == PDF
    assert not lock_file(disk).exists()


async def test_a_memory_hit_does_not_render_and_rewrites_a_pdf_gone_from_disk(
    disk: DiskStore,
) -> None:
    pool = FakePool()
    coord = coordinator(pool, disk)
    entry, _, _ = await coord.render_once(KEY, make_job())
    pdf_path(disk.root, KEY).unlink()

    assert await coord.lookup(KEY, verify_store=False) == (entry, "memory")
    assert pool.calls == 1
    assert pdf_path(disk.root, KEY).read_bytes() == PDF


async def test_memory_hits_checked_on_disk_together_write_back_only_what_vanished(
    disk: DiskStore,
) -> None:
    """A document walking its cached pieces takes them from memory and checks the store for
    all of them at once (``keep_stored``): a piece whose files vanished is written back."""
    coord = coordinator(FakePool(), disk)
    kept, gone = "1" * 64, "2" * 64
    entries = []
    for key in (kept, gone):
        entry, _, _ = await coord.render_once(key, make_job())
        entries.append((key, entry))
    pdf_path(disk.root, gone).unlink()
    kept_mtime = pdf_path(disk.root, kept).stat().st_mtime_ns

    assert coord.in_memory(gone) == entries[1][1]
    assert coord.in_memory("3" * 64) is None
    await coord.keep_stored(entries)
    assert pdf_path(disk.root, gone).read_bytes() == PDF
    assert pdf_path(disk.root, kept).stat().st_mtime_ns == kept_mtime  # not written again


async def test_a_memory_hit_with_verify_store_rewrites_a_damaged_pdf(disk: DiskStore) -> None:
    coord = coordinator(FakePool(), disk)
    entry, _, _ = await coord.render_once(KEY, make_job())
    pdf_path(disk.root, KEY).write_bytes(b"%PDF-1.7\ndamaged")

    assert await coord.lookup(KEY, verify_store=True) == (entry, "memory")
    assert pdf_path(disk.root, KEY).read_bytes() == PDF


async def test_a_disk_hit_fills_memory(disk: DiskStore) -> None:
    entry, _, _ = await coordinator(FakePool(), disk).render_once(KEY, make_job())
    pool = FakePool()
    fresh = coordinator(pool, disk)  # another process: empty memory, same volume

    assert await fresh.lookup(KEY, verify_store=False) == (entry, "disk")
    assert await fresh.lookup(KEY, verify_store=False) == (entry, "memory")
    assert pool.calls == 0


async def test_concurrent_calls_for_one_key_render_once_and_the_follower_waits(
    disk: DiskStore,
) -> None:
    pool, stored = FakePool(hold=True), Stored()
    coord = coordinator(pool, disk)
    leader = asyncio.create_task(coord.render_once(KEY, make_job(), stored))
    await pool.entered.wait()  # the leader's render is in progress, and stays there
    follower = asyncio.create_task(coord.render_once(KEY, make_job(), stored))

    async def following() -> bool:
        return coord.followers(KEY) == 1

    await until(following, what="the follower to wait on the leader's render")
    pool.gate.set()
    (lead_entry, lead_cache, _), (follow_entry, follow_cache, _) = await asyncio.gather(
        leader, follower
    )

    assert (lead_cache, follow_cache) == ("miss", "memory")
    assert follow_entry == lead_entry and pool.calls == 1
    assert stored.calls == 1  # the leader stored it; the follower only waited
    assert coord.followers(KEY) == 0


async def test_a_failed_render_is_not_cached_and_its_lock_file_is_gone(disk: DiskStore) -> None:
    pool, stored = FakePool(error=WorkerCrashed("the worker died"), hold=True), Stored()
    coord = coordinator(pool, disk)
    leader = asyncio.create_task(coord.render_once(KEY, make_job(), stored))
    await pool.entered.wait()
    follower = asyncio.create_task(coord.render_once(KEY, make_job(), stored))

    async def following() -> bool:
        return coord.followers(KEY) == 1

    await until(following, what="the follower to wait on the leader's render")
    pool.gate.set()
    results = await asyncio.gather(leader, follower, return_exceptions=True)

    assert [type(r) for r in results] == [WorkerCrashed, WorkerCrashed]
    assert stored.calls == 0 and not lock_file(disk).exists()
    assert await coord.lookup(KEY, verify_store=False) == (None, "miss")
    assert not pdf_path(disk.root, KEY).exists()

    pool.error = None  # the next attempt renders afresh: nothing of the failure was kept
    _, cache, _ = await coord.render_once(KEY, make_job())
    assert cache == "miss" and pool.calls == 2


async def test_a_key_stored_by_another_replica_while_waiting_for_its_lock_is_not_rendered(
    disk: DiskStore,
) -> None:
    pool = FakePool()
    coord = coordinator(pool, disk)
    other = CachedPdf(PDF, 3, hashlib.sha256(PDF).hexdigest())
    async with KeyLocks(disk.root).hold(KEY, timeout=10):  # the other replica renders it
        waiting = asyncio.create_task(coord.render_once(KEY, make_job()))
        await disk.write(KEY, other)

    entry, cache, _ = await waiting
    assert (entry, cache, pool.calls) == (other, "disk", 0)


async def test_a_lock_held_past_the_wait_gives_a_retryable_store_error(disk: DiskStore) -> None:
    pool = FakePool()
    coord = coordinator(pool, disk, lock_wait_seconds=0.2)
    async with KeyLocks(disk.root).hold(KEY, timeout=10):  # held until the wait is over
        with pytest.raises(StoreError) as raised:
            await coord.render_once(KEY, make_job())

    assert raised.value.retryable and pool.calls == 0


async def test_a_leader_whose_own_start_fails_does_not_fail_its_follower(disk: DiskStore) -> None:
    """The leader waits for its turn; a follower joins its render; when the leader's turn
    comes its job is past its deadline: the leader fails alone, the follower renders."""
    turns = FairQueue(slots=1, per_user=1)
    pool = FakePool()
    coord = coordinator(pool, disk, turns=turns)
    busy, free = asyncio.Event(), asyncio.Event()

    async def other_user() -> None:
        async with turns.turn("someone else"):
            busy.set()
            await free.wait()

    async def expired() -> None:
        raise DeadlineExceeded("the job's deadline has passed")

    started: list[str] = []

    async def on_start() -> None:
        started.append("follower")

    blocker = asyncio.ensure_future(other_user())
    await busy.wait()
    leader = asyncio.ensure_future(coord.render_once(KEY, make_job(), on_start=expired))
    await until(lambda: _async(turns.waiting == 1), what="the leader to wait for its turn")
    follower = asyncio.ensure_future(coord.render_once(KEY, make_job(), on_start=on_start))
    await until(lambda: _async(coord.followers(KEY) == 1), what="the follower to join")
    free.set()
    await blocker

    with pytest.raises(DeadlineExceeded):
        await leader
    entry, cache, _ = await follower
    assert (cache, pool.calls) == ("miss", 1)  # it led the render itself
    assert entry.pdf == PDF and started == ["follower", "follower"]
    assert turns.waiting == 0 and turns.running("someone else") == 0


async def _async(value: bool) -> bool:
    return value
