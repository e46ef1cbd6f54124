"""The render worker pool: WeasyPrint runs in spawned processes, never on the event loop.

A semaphore admits at most ``concurrency`` renders into the executor, so a job's time budget
counts from when a worker is free for it, not from when it joined the executor's queue. A slot
is released when the worker really finishes, so a render that outlived its budget keeps its slot
until it ends: the worker is not killed on timeout, and ``check`` reports the pool unhealthy
once a render has overstayed its budget (so an orchestrator can restart the replica).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import time
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from snapshot_renderer import metrics
from snapshot_renderer.errors import RenderTimeout, WorkerCrashed
from snapshot_renderer.render import worker
from snapshot_renderer.render.worker import RenderResult

log = logging.getLogger(__name__)


class RenderPool:
    """A ``ProcessPoolExecutor`` of recycled workers with an async face."""

    def __init__(
        self,
        concurrency: int,
        max_jobs_per_worker: int,
        timeout_seconds: float,
        log_level: str = "WARNING",
        log_format: str = "console",
    ) -> None:
        self.concurrency = concurrency
        self._max_jobs = max_jobs_per_worker
        self._timeout = timeout_seconds
        self._initargs = (log_level, log_format)
        self._slots = asyncio.Semaphore(concurrency)
        self._running: dict[Future[Any], float] = {}
        self._pids: set[int] = set()
        self._last_ok = 0.0
        self._executor = self._new_executor()

    def _new_executor(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self.concurrency,
            mp_context=multiprocessing.get_context("spawn"),
            max_tasks_per_child=self._max_jobs,
            initializer=worker.init_worker,
            initargs=self._initargs,
        )

    async def _submit(self, timeout: float, fn: Any, *args: Any) -> Any:
        """Run ``fn(*args)`` in a worker once a slot is free; raise on timeout or a dead pool."""
        await self._slots.acquire()
        executor = self._executor
        try:
            future = executor.submit(fn, *args)
        except BaseException as exc:
            self._slots.release()
            if isinstance(exc, BrokenProcessPool):
                self._replace(executor)
                raise WorkerCrashed(f"the render pool was broken: {exc}") from None
            raise
        self._running[future] = time.monotonic()
        future.add_done_callback(self._release_from_thread(asyncio.get_running_loop()))
        try:
            result = await asyncio.wait_for(asyncio.wrap_future(future), timeout)
        except BrokenProcessPool as exc:
            self._replace(executor)
            raise WorkerCrashed(f"a render worker died: {exc}") from None
        self._last_ok = time.monotonic()
        return result

    def _release_from_thread(self, loop: asyncio.AbstractEventLoop) -> Any:
        """A done-callback that frees the slot on the event loop once the worker is done."""

        def callback(future: Future[Any]) -> None:
            if not loop.is_closed():
                loop.call_soon_threadsafe(self._finished, future)

        return callback

    def _finished(self, future: Future[Any]) -> None:
        self._running.pop(future, None)
        self._slots.release()

    def _replace(self, broken: ProcessPoolExecutor) -> None:
        """Swap in a fresh executor once, however many jobs saw the same one break."""
        if self._executor is not broken:
            return
        log.error("render worker pool broke; starting a new one")
        metrics.POOL_RESTARTS.inc()
        self._executor = self._new_executor()
        broken.shutdown(wait=False, cancel_futures=True)

    async def render(
        self, payload: dict[str, Any], options: dict[str, Any], template: str
    ) -> RenderResult:
        """Render in a worker within the time budget."""
        try:
            result: RenderResult = await self._submit(
                self._timeout, worker.render_job, payload, options, template
            )
        except TimeoutError:
            raise RenderTimeout(f"render exceeded {self._timeout:g} s") from None
        if result.pid not in self._pids:
            self._pids.add(result.pid)
            metrics.WORKER_STARTS.inc()
        if result.refused_fetches:
            metrics.FETCHES_REFUSED.inc(result.refused_fetches)
        return result

    async def warm_up(self, timeout: float = 60.0) -> None:
        """Start and initialize every worker before the first job arrives."""
        await asyncio.gather(*(self._submit(timeout, worker.ping) for _ in range(self.concurrency)))

    async def check(self, timeout: float = 3.0, fresh_for: float = 30.0) -> bool:
        """Whether the pool can render: a recent success, busy-but-on-time workers, or a ping."""
        now = time.monotonic()
        if now - self._last_ok < fresh_for:
            return True
        if self._slots.locked():
            oldest = min(self._running.values(), default=now)
            return now - oldest < self._timeout + timeout
        try:
            await self._submit(timeout, worker.ping)
        except (TimeoutError, WorkerCrashed):
            return False
        return True

    async def close(self, wait: bool = True) -> None:
        """Stop the workers: queued work is cancelled; running renders are waited for, or
        with ``wait=False`` (shutdown grace exhausted) their processes are terminated."""
        executor = self._executor
        if not wait:
            # The executor has no public terminate before Python 3.14.
            for process in list(getattr(executor, "_processes", {}).values()):
                process.terminate()
        await asyncio.to_thread(executor.shutdown, wait=True, cancel_futures=True)
