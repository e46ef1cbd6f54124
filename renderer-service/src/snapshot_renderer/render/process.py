"""One render worker process and the parent's handle on it.

The parent talks to each worker over its own pipe, so it always knows which process runs which
job: a render over its time budget or its memory budget is stopped by killing exactly that
process, and the other workers go on. Workers are spawned (never forked from the event loop)
and replaced after ``max_jobs`` renders to cap memory creep.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from snapshot_renderer.render import worker
from snapshot_renderer.render.faults import FaultHooks

_PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class WorkerConfig:
    log_level: str = "WARNING"
    log_format: str = "console"
    max_pages: int = 2000
    warm_up: bool = True
    faults: FaultHooks = field(default_factory=FaultHooks)


@dataclass(eq=False)
class WorkerProcess:
    """A spawned worker and the parent's end of its pipe."""

    process: BaseProcess
    conn: Connection
    jobs: float = 0.0  # worn so far (``pool.JOB_COST``)
    busy_since: float | None = None
    killed_for: str | None = None
    ready: bool = field(default=False)

    @classmethod
    def spawn(cls, config: WorkerConfig) -> WorkerProcess:
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe(duplex=True)
        process = ctx.Process(
            target=worker.serve,
            args=(
                child,
                config.log_level,
                config.log_format,
                config.max_pages,
                config.warm_up,
                config.faults,
            ),
            name="snapshot-render-worker",
            daemon=True,
        )
        process.start()
        child.close()
        return cls(process=process, conn=parent)

    @property
    def pid(self) -> int:
        return self.process.pid or 0

    def wait_ready(self, timeout: float) -> None:
        """Block until the worker reports it is initialized (runs in a thread)."""
        if not self.conn.poll(timeout):
            raise TimeoutError("worker did not start in time")
        tag, _ = self.conn.recv()
        if tag != "ready":
            raise RuntimeError(f"unexpected first message from worker: {tag!r}")
        self.ready = True

    def call(self, request: tuple[Any, ...]) -> tuple[Any, ...]:
        """Send one request and block for its answer (runs in a thread); EOFError if it died."""
        self.conn.send(request)
        answer: tuple[Any, ...] = self.conn.recv()
        return answer

    def rss_bytes(self) -> int:
        """Resident memory of the worker, from /proc (0 once it is gone)."""
        try:
            with open(f"/proc/{self.pid}/statm", "rb") as f:
                return int(f.read().split()[1]) * _PAGE
        except (OSError, ValueError, IndexError):
            return 0

    def kill(self, reason: str) -> None:
        self.killed_for = self.killed_for or reason
        if self.process.is_alive():
            self.process.kill()

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the worker to exit; kill it if it does not (runs in a thread)."""
        try:
            self.conn.send(None)
        except (OSError, ValueError):
            pass
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout)
        self.conn.close()

    def busy_for(self) -> float:
        return 0.0 if self.busy_since is None else time.monotonic() - self.busy_since
