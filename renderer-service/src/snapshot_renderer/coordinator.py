"""The render coordinator: where a job's PDF comes from (memory, disk or one fresh render).

``lookup`` checks the memory LRU, then the disk store. ``render_once`` renders a key at most
once: concurrent callers in this process follow the in-flight render of the first (the leader)
and get its PDF from memory; replicas sharing the store serialise on the key's file lock, and
the one that waited finds the PDF on disk. The leader stores the PDF on disk before memory, so
a later broker hiccup loses nothing. A failed render is stored nowhere and its lock file is
removed (``KeyLocks.hold``). Before it takes a worker, a render waits for a fair turn of its
user's (``FairQueue``): misses of many users share the workers round robin.

This module knows nothing of AMQP: the consumer (``consumer.py``) decodes jobs, reports status
events and turns the errors raised here into broker actions.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol, TypeVar

from snapshot_shared.messages import RenderJob

from snapshot_renderer import metrics
from snapshot_renderer.cache.disk import DiskStore
from snapshot_renderer.cache.lock import KeyLocks
from snapshot_renderer.cache.memory import CachedPdf, MemoryCache
from snapshot_renderer.fair_queue import FairQueue
from snapshot_renderer.render.worker import RenderResult

Rendered = tuple[CachedPdf, str, float]  # the PDF, its cache outcome and the time it took
OnStored = Callable[[], Awaitable[None]]
OnStart = Callable[[], Awaitable[None]]
# Pieces done, pieces in all, phase ("rendering", "assembling"): a document rendered in pieces.
OnProgress = Callable[[int, int, str], Awaitable[None]]
Start = Callable[[], Awaitable[None]]
# Makes a key's entry (called once, under the key's lock); calls ``Start`` when the work
# really starts (after a fair turn), and returns the entry and the seconds it took.
Produce = Callable[[Start], Awaitable[tuple[CachedPdf, float]]]
T = TypeVar("T")

log = logging.getLogger(__name__)


class _StartRefused(Exception):
    """The leader's ``on_start`` raised ``reason``: its followers do not share that fate."""

    def __init__(self, reason: Exception) -> None:
        super().__init__(str(reason))
        self.reason = reason


class Renderer(Protocol):
    """What the coordinator needs of the worker pool (``render.pool.RenderPool``)."""

    async def render(
        self,
        payload: dict[str, Any],
        options: dict[str, Any],
        template: str,
        hash_version: int = 1,
    ) -> RenderResult: ...


class Documents(Protocol):
    """Documents rendered in pieces (``documents.PiecedDocuments``)."""

    def wants(self, job: RenderJob) -> bool: ...

    def produce(self, job: RenderJob, on_progress: OnProgress | None) -> Produce: ...


class RenderCoordinator:
    """Looks up, locks, renders or follows, and stores; one instance per renderer process."""

    def __init__(
        self,
        *,
        pool: Renderer,
        memory: MemoryCache,
        disk: DiskStore,
        lock_wait_seconds: float = 300.0,
        turns: FairQueue | None = None,
    ) -> None:
        self.documents: Documents | None = None  # set once the pieces' fan-out is up
        self._pool = pool
        self._turns = turns
        self._memory = memory
        self._disk = disk
        self._locks = KeyLocks(disk.root)
        self._lock_wait = lock_wait_seconds
        self._inflight: dict[str, asyncio.Future[Rendered]] = {}
        self._followers: dict[str, int] = {}

    def followers(self, key: str) -> int:
        """Callers waiting on this process's in-flight render of ``key``."""
        return self._followers.get(key, 0)

    async def lookup(self, key: str, verify_store: bool) -> tuple[CachedPdf | None, str]:
        """Memory, then disk. A memory hit whose file vanished from disk is written back; when
        the API reported the stored copy missing or damaged, it is verified and rewritten."""
        entry = self._memory.get(key)
        if entry is not None:
            on_disk = await (self._disk.read(key) if verify_store else self._disk.exists(key))
            if not on_disk:
                await self._disk.write(key, entry)
            return entry, "memory"
        entry = await self._disk.read(key)
        if entry is not None:
            self._memory.put(key, entry)
            return entry, "disk"
        return None, "miss"

    def in_memory(self, key: str) -> CachedPdf | None:
        """``key``'s entry if memory holds it; whether the store does too is ``keep_stored``'s
        to check, for many keys at once (``lookup`` checks each hit on its own)."""
        return self._memory.get(key)

    async def keep_stored(self, entries: Sequence[tuple[str, CachedPdf]]) -> None:
        """Write back those of the memory hits ``entries`` whose files vanished from disk."""
        if entries:
            for key in await self._disk.missing([key for key, _ in entries]):
                await self._disk.write(key, dict(entries)[key])

    async def render_once(
        self,
        key: str,
        job: RenderJob,
        on_stored: OnStored | None = None,
        on_start: OnStart | None = None,
        on_progress: OnProgress | None = None,
    ) -> Rendered:
        """Render the document ``key`` of ``job`` once (``once``): whole in one worker, or in
        pieces when ``documents`` wants it (a big room)."""
        if self.documents is not None and self.documents.wants(job):
            produce = self.documents.produce(job, on_progress)
        else:
            produce = self._whole(job)
        return await self.once(key, produce, on_stored, on_start)

    async def piece_once(
        self, key: str, user: str, render: Callable[[], Awaitable[CachedPdf]]
    ) -> tuple[CachedPdf, str]:
        """The piece ``key`` from memory or disk, or rendered once (``once``) by ``render``
        in a fair turn of ``user``'s; with its cache outcome."""
        entry, cache = await self.lookup(key, False)
        if entry is not None:
            return entry, cache

        async def produce(start: Start) -> tuple[CachedPdf, float]:
            began = time.perf_counter()
            fresh = await self.in_turn(user, start, render, borrow=True)
            return fresh, time.perf_counter() - began

        entry, cache, _ = await self.once(key, produce)
        return entry, cache

    async def once(
        self,
        key: str,
        produce: Produce,
        on_stored: OnStored | None = None,
        on_start: OnStart | None = None,
    ) -> Rendered:
        """Make ``key``'s entry once: concurrent callers in this process share one attempt
        (the followers get it from memory), and replicas sharing the store serialise on the
        key's file lock. ``on_start`` runs when the work starts (in the leader once it has its
        turn, in a follower at once); it may raise to give the work up. ``on_stored`` runs in
        the leader once the entry is stored."""
        while (future := self._inflight.get(key)) is not None:
            if on_start is not None:
                await on_start()
            started = time.perf_counter()
            self._followers[key] = self._followers.get(key, 0) + 1
            try:
                entry, _, _ = await asyncio.shield(future)
            except _StartRefused:
                continue  # the leader's own job gave up before its render: lead instead
            finally:
                self._unfollow(key)
            return entry, "memory", (time.perf_counter() - started) * 1000
        future = asyncio.ensure_future(self._produce_locked(key, produce, on_stored, on_start))
        self._inflight[key] = future
        future.add_done_callback(lambda done: self._forget(key, done))
        try:
            return await asyncio.shield(future)
        except _StartRefused as refused:
            raise refused.reason from None

    def _unfollow(self, key: str) -> None:
        left = self._followers.pop(key) - 1
        if left:
            self._followers[key] = left

    def _forget(self, key: str, done: asyncio.Future[Rendered]) -> None:
        if self._inflight.get(key) is done:
            del self._inflight[key]
        if not done.cancelled():
            done.exception()  # retrieved here so an orphaned failure is not logged as lost

    async def _produce_locked(
        self, key: str, produce: Produce, on_stored: OnStored | None, on_start: OnStart | None
    ) -> Rendered:
        async with self._locks.hold(key, self._lock_wait):
            started = time.perf_counter()
            stored = await self._disk.read(key)  # another replica may have rendered it meanwhile
            if stored is not None:
                self._memory.put(key, stored)
                return stored, "disk", (time.perf_counter() - started) * 1000
            entry, seconds = await produce(lambda: self._start(on_start))
            await self._disk.write(key, entry)  # stored first: a broker hiccup loses nothing
        self._memory.put(key, entry)
        if on_stored is not None:
            await on_stored()
        return entry, "miss", seconds * 1000

    def _whole(self, job: RenderJob) -> Produce:
        """Render ``job``'s document in one worker, in a fair turn of its user's."""

        async def produce(start: Start) -> tuple[CachedPdf, float]:
            render = lambda: self._pool.render(  # noqa: E731
                job.payload, job.options, job.template, job.hash_version
            )
            result = await self.in_turn(user_of(job), start, render)
            metrics.RENDER_SECONDS.observe(result.seconds)
            metrics.PDF_BYTES.observe(len(result.pdf))
            metrics.PDF_PAGES.observe(result.pages)
            log.info(
                "rendered",
                extra={"pages": result.pages, "render_ms": round(result.seconds * 1000, 1)},
            )
            digest = hashlib.sha256(result.pdf).hexdigest()
            return CachedPdf(result.pdf, result.pages, digest), result.seconds

        return produce

    async def in_turn(
        self, user: str, start: Start, work: Callable[[], Awaitable[T]], borrow: bool = False
    ) -> T:
        """Run ``work`` (which takes a worker) once ``user`` has a fair turn, after ``start``;
        short work (a piece) may ``borrow`` a turn past the user's share (``FairQueue``)."""
        if self._turns is None:
            await start()
            return await work()
        async with self._turns.turn(user, borrow):
            await start()
            return await work()

    @staticmethod
    async def _start(on_start: OnStart | None) -> None:
        """Run the leader's ``on_start``; its failure concerns the leader's job alone."""
        if on_start is None:
            return
        try:
            await on_start()
        except Exception as exc:
            raise _StartRefused(exc) from exc


def user_of(job: RenderJob) -> str:
    """Whose fair turn a job's renders take (a job from an API that names no user is a user
    of its own: it only takes its place in the round robin)."""
    return job.requested_by if job.requested_by is not None else f"task:{job.task_id}"


async def no_start() -> None:
    """A ``Start`` for work that reports nothing when it starts."""
