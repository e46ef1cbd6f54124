"""The render worker pool: WeasyPrint runs in spawned processes, never on the event loop.

Each job takes an idle worker, so its time budget counts from when a worker is free for it.
The pool enforces both budgets per job: past ``timeout_seconds`` the worker running it is
killed (``render_timeout``); a watchdog kills a worker whose resident memory passes
``memory_limit_bytes`` (``render_oom``). A worker that dies otherwise gives a retryable
``worker_crashed``. Every lost or recycled worker is replaced, so other jobs go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import shutil
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from snapshot_shared.messages import RenderOptions, SnapshotPayload

from snapshot_renderer import metrics
from snapshot_renderer.errors import (
    RendererError,
    RenderOutOfMemory,
    RenderTimeout,
    WorkerCrashed,
    from_code,
)
from snapshot_renderer.pieces.keys import Seam
from snapshot_renderer.pieces.plan import Piece
from snapshot_renderer.render.faults import FaultHooks
from snapshot_renderer.render.piece_jobs import AssembledFile, AssemblyResult, PieceResult, Stamp
from snapshot_renderer.render.pieces import RenderedPiece
from snapshot_renderer.render.process import WorkerConfig, WorkerProcess
from snapshot_renderer.render.worker import RenderResult

log = logging.getLogger(__name__)
# How much of ``max_jobs_per_worker`` a call wears a worker: a piece is a few pages, so a
# big room's hundreds of pieces do not recycle every worker many times over.
JOB_COST = {"render": 1.0, "assemble": 1.0, "piece": 0.1, "stamp": 0.1}
WATCH_SECONDS = 0.1
START_TIMEOUT = 120.0


class RenderPool:
    """``concurrency`` worker processes with an async face."""

    def __init__(
        self,
        concurrency: int,
        max_jobs_per_worker: int,
        timeout_seconds: float,
        log_level: str = "WARNING",
        log_format: str = "console",
        memory_limit_bytes: int = 0,
        max_pages: int = 2000,
        warm_up_workers: bool = True,
        faults: FaultHooks | None = None,
    ) -> None:
        self.concurrency = concurrency
        self._max_jobs = max_jobs_per_worker
        self._timeout = timeout_seconds
        self._memory_limit = memory_limit_bytes
        self._config = WorkerConfig(
            log_level, log_format, max_pages, warm_up_workers, faults or FaultHooks()
        )
        self._threads = ThreadPoolExecutor(concurrency + 2, thread_name_prefix="render-io")
        self._idle: asyncio.Queue[WorkerProcess] = asyncio.Queue()
        self._busy: set[WorkerProcess] = set()
        self._starting: set[asyncio.Future[Any]] = set()
        self._watchdog: asyncio.Task[None] | None = None
        self._closed = False
        self._last_ok = 0.0

    async def _in_thread(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._threads, fn, *args)

    def _spawn(self) -> None:
        """Start a worker in the background; it joins the idle queue once initialized."""
        task = asyncio.create_task(self._start_one())
        self._starting.add(task)
        task.add_done_callback(self._starting.discard)

    async def _start_one(self) -> None:
        proc = WorkerProcess.spawn(self._config)
        metrics.WORKER_STARTS.inc()
        try:
            await self._in_thread(proc.wait_ready, START_TIMEOUT)
        except Exception:
            log.exception("a render worker failed to start; trying again")
            await self._in_thread(proc.stop)
            if not self._closed:
                await asyncio.sleep(1.0)
                self._spawn()
            return
        if self._closed:
            await self._in_thread(proc.stop)
        else:
            self._idle.put_nowait(proc)

    async def warm_up(self, timeout: float = START_TIMEOUT) -> None:
        """Start every worker and wait until all are initialized."""
        for _ in range(self.concurrency):
            self._spawn()
        if self._watchdog is None:
            self._watchdog = asyncio.create_task(self._watch_memory())
        async with asyncio.timeout(timeout):
            while self._idle.qsize() < self.concurrency and self._starting:
                await asyncio.gather(*self._starting)

    async def render(
        self,
        payload: dict[str, Any],
        options: dict[str, Any],
        template: str,
        hash_version: int = 1,
    ) -> RenderResult:
        """Render in a worker within the time and memory budgets (``hash_version``: the
        formula of the content hash the PDF's identifier carries)."""
        request = ("render", payload, options, template, hash_version)
        result: RenderResult = await self._call(request)
        if result.refused_fetches:
            metrics.FETCHES_REFUSED.inc(result.refused_fetches)
        return result

    async def render_piece(
        self, payload: SnapshotPayload, options: RenderOptions, piece: Piece, seam: Seam
    ) -> PieceResult:
        """Render one piece in a worker within the time and memory budgets (per piece)."""
        result: PieceResult = await self._call(("piece", payload, options, piece, seam))
        if result.refused_fetches:
            metrics.FETCHES_REFUSED.inc(result.refused_fetches)
        return result

    async def render_stamp(
        self, payload: SnapshotPayload, options: RenderOptions, pages: int
    ) -> Stamp:
        """Render the stamp document of a ``pages``-page document in a worker."""
        result: Stamp = await self._call(("stamp", payload, options, pages))
        return result

    async def assemble(
        self,
        pieces: Sequence[RenderedPiece],
        payload: SnapshotPayload,
        options: RenderOptions,
        content_hash: str,
        max_pages: int,
        stamp: Stamp | None = None,
    ) -> AssemblyResult:
        """Stamp and assemble pieces in a worker within the time and memory budgets. The pieces'
        PDFs go to the worker as files of a private temporary directory, and it writes the
        document there, read here; the directory is removed after."""
        directory = await self._in_thread(tempfile.mkdtemp, None, "snapshot-assembly-")
        try:
            files = await self._in_thread(_write_pieces, directory, pieces)
            bare = [dataclasses.replace(piece, pdf=b"") for piece in pieces]
            path = f"{directory}/document.pdf"
            request = (
                "assemble",
                bare,
                payload,
                options,
                content_hash,
                max_pages,
                path,
                files,
                stamp,
            )
            done: AssembledFile = await self._call(request)
            pdf = await self._in_thread(Path(path).read_bytes)
        finally:
            await self._in_thread(shutil.rmtree, directory, True)
        return AssemblyResult(pdf, done.pages, done.seconds, done.pid)

    async def _call(self, request: tuple[Any, ...], timeout: float | None = None) -> Any:
        if self._watchdog is None:
            await self.warm_up()
        proc = await self._idle.get()
        proc.busy_since = time.monotonic()
        self._busy.add(proc)
        budget = self._timeout if timeout is None else timeout
        future = asyncio.ensure_future(self._in_thread(proc.call, request))
        try:
            answer = await asyncio.wait_for(asyncio.shield(future), budget)
        except TimeoutError:
            proc.kill("timeout")
            with contextlib.suppress(Exception):
                await future
            await self._in_thread(proc.process.join, 5.0)  # gone before we report it
            raise RenderTimeout(f"render exceeded {budget:g} s; its worker was stopped") from None
        except (EOFError, OSError):
            proc.killed_for = proc.killed_for or "crashed"
            await self._in_thread(proc.process.join, 2.0)
            raise self._lost(proc) from None
        finally:
            self._busy.discard(proc)
            proc.busy_since = None
            self._release(proc, JOB_COST.get(request[0], 0.0))
        if answer[0] == "error":
            raise from_code(answer[1], answer[2])
        self._last_ok = time.monotonic()
        return answer[1]

    def _lost(self, proc: WorkerProcess) -> RendererError:
        if proc.killed_for == "memory":
            return RenderOutOfMemory(
                f"render used more than {self._memory_limit // 2**20} MiB; its worker was stopped"
            )
        log.error("a render worker died (exit code %s)", proc.process.exitcode)
        return WorkerCrashed(f"the render worker died (exit code {proc.process.exitcode})")

    def _release(self, proc: WorkerProcess, cost: float) -> None:
        """Return a healthy worker to the idle queue; replace a dead or worn-out one."""
        proc.jobs += cost
        alive = proc.killed_for is None and proc.process.is_alive()
        if self._closed:
            proc.kill("shutdown")
            return
        if alive and proc.jobs < self._max_jobs:
            self._idle.put_nowait(proc)
            return
        if not alive:
            metrics.POOL_RESTARTS.inc()
        else:  # observability: worn out after max_jobs renders
            metrics.WORKER_RECYCLES.inc()
        retire = asyncio.ensure_future(self._in_thread(proc.stop))
        self._starting.add(retire)
        retire.add_done_callback(self._starting.discard)
        self._spawn()

    async def _watch_memory(self) -> None:
        """Kill a busy worker whose resident memory passes the budget."""
        while not self._closed:
            if self._memory_limit:
                for proc in list(self._busy):
                    if proc.rss_bytes() > self._memory_limit:
                        log.warning("render worker over its memory budget; stopping it")
                        proc.kill("memory")
            await asyncio.sleep(WATCH_SECONDS)

    async def check(self, timeout: float = 3.0, fresh_for: float = 30.0) -> bool:
        """Whether the pool can render: a recent success, busy-but-on-time workers, or a ping."""
        now = time.monotonic()
        if now - self._last_ok < fresh_for:
            return True
        if self._idle.empty():
            overdue = [p for p in self._busy if p.busy_for() > self._timeout + timeout]
            return bool(self._busy) and not overdue
        try:
            await self._call(("ping",), timeout)
        except RendererError:
            return False
        return True

    async def close(self, wait: bool = True) -> None:
        """Stop the workers; with ``wait=False`` (grace exhausted) busy ones are killed."""
        self._closed = True
        if self._watchdog is not None:
            self._watchdog.cancel()
        for task in list(self._starting):
            task.cancel()
        if not wait:
            for proc in list(self._busy):
                proc.kill("shutdown")
        idle = []
        while not self._idle.empty():
            idle.append(self._idle.get_nowait())
        await asyncio.gather(*(self._in_thread(p.stop) for p in idle + list(self._busy)))
        self._threads.shutdown(wait=False, cancel_futures=True)


def _write_pieces(directory: str, pieces: Sequence[RenderedPiece]) -> list[str]:
    files = [f"{directory}/piece-{index:05d}.pdf" for index in range(len(pieces))]
    for file, piece in zip(files, pieces, strict=True):
        Path(file).write_bytes(piece.pdf)
    return files
