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
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

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

log = logging.getLogger(__name__)


class _StartRefused(Exception):
    """The leader's ``on_start`` raised ``reason``: its followers do not share that fate."""

    def __init__(self, reason: Exception) -> None:
        super().__init__(str(reason))
        self.reason = reason


class Renderer(Protocol):
    """What the coordinator needs of the worker pool (``render.pool.RenderPool``)."""

    async def render(
        self, payload: dict[str, Any], options: dict[str, Any], template: str
    ) -> RenderResult: ...


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

    async def render_once(
        self,
        key: str,
        job: RenderJob,
        on_stored: OnStored | None = None,
        on_start: OnStart | None = None,
    ) -> Rendered:
        """Render ``key`` once: concurrent identical jobs in this process share one attempt
        (the followers get the PDF from memory), and replicas sharing the store serialise on
        the key's file lock. ``on_start`` runs when the job's render starts (in the leader once
        it has its turn, in a follower at once); it may raise to give the render up.
        ``on_stored`` runs in the leader once the PDF is stored."""
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
        future = asyncio.ensure_future(self._render_locked(key, job, on_stored, on_start))
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

    async def _render_locked(
        self, key: str, job: RenderJob, on_stored: OnStored | None, on_start: OnStart | None
    ) -> Rendered:
        async with self._locks.hold(key, self._lock_wait):
            started = time.perf_counter()
            stored = await self._disk.read(key)  # another replica may have rendered it meanwhile
            if stored is not None:
                self._memory.put(key, stored)
                return stored, "disk", (time.perf_counter() - started) * 1000
            result = await self._render_in_turn(job, on_start)
            metrics.RENDER_SECONDS.observe(result.seconds)
            metrics.PDF_BYTES.observe(len(result.pdf))
            metrics.PDF_PAGES.observe(result.pages)
            entry = CachedPdf(result.pdf, result.pages, hashlib.sha256(result.pdf).hexdigest())
            log.info(
                "rendered",
                extra={
                    "key": key,
                    "pages": result.pages,
                    "render_ms": round(result.seconds * 1000, 1),
                },
            )
            await self._disk.write(key, entry)  # stored first: a broker hiccup loses nothing
        self._memory.put(key, entry)
        if on_stored is not None:
            await on_stored()
        return entry, "miss", result.seconds * 1000

    async def _render_in_turn(self, job: RenderJob, on_start: OnStart | None) -> RenderResult:
        """Render in a worker once the job's user has a fair turn (a job from an API that
        names no user is a user of its own: it only takes its place in the round robin)."""
        if self._turns is None:
            await self._start(on_start)
            return await self._pool.render(job.payload, job.options, job.template)
        user = job.requested_by if job.requested_by is not None else f"task:{job.task_id}"
        async with self._turns.turn(user):
            await self._start(on_start)
            return await self._pool.render(job.payload, job.options, job.template)

    @staticmethod
    async def _start(on_start: OnStart | None) -> None:
        """Run the leader's ``on_start``; its failure concerns the leader's job alone."""
        if on_start is None:
            return
        try:
            await on_start()
        except Exception as exc:
            raise _StartRefused(exc) from exc
