"""Bringing the stack back to quiet between load runs, so no run pays for the previous one."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench import db
from bench.stack import BenchStack


async def _wait(probe: Any, done: Any, timeout: float) -> tuple[int, float]:
    """Poll ``probe`` every 50 ms until ``done(value)``; (last value, seconds waited)."""
    started = time.perf_counter()
    while True:
        value = await probe()
        if done(value) or time.perf_counter() - started > timeout:
            return value, time.perf_counter() - started
        await asyncio.sleep(0.05)


class NoRenderer:
    """With no renderer consuming: wait for the outbox relay to publish, then drop the jobs."""

    def __init__(self, stack: BenchStack, timeout: float) -> None:
        self.stack = stack
        self.timeout = timeout

    def __call__(self) -> dict[str, Any]:
        async def run() -> tuple[int, float]:
            conn = await db.connect(self.stack.database_url)
            try:
                return await _wait(lambda: db.outbox_backlog(conn), lambda n: n == 0, self.timeout)
            finally:
                await conn.close()

        left, waited = asyncio.run(run())
        return {
            "outbox_left": left,
            "waited_s": round(waited, 2),
            "purged": self.stack.purge_jobs(),
        }


class WithRenderers:
    """With renderers running: wait until every task created so far is terminal again; past
    the timeout, drop the jobs still queued and wait for the status events to drain."""

    def __init__(self, stack: BenchStack, timeout: float) -> None:
        self.stack = stack
        self.timeout = timeout
        self.baseline = asyncio.run(self._open_tasks())  # left open: their jobs were purged

    async def _open_tasks(self) -> int:
        conn = await db.connect(self.stack.database_url)
        try:
            return await db.open_tasks(conn)
        finally:
            await conn.close()

    def __call__(self) -> dict[str, Any]:
        async def run() -> dict[str, Any]:
            conn = await db.connect(self.stack.database_url)
            try:
                left, waited = await _wait(
                    lambda: db.open_tasks(conn), lambda n: n <= self.baseline, self.timeout
                )
                report: dict[str, Any] = {"open_left": left - self.baseline}
                if left > self.baseline:
                    report["purged"] = await self._drain(conn)
                    self.baseline = await db.open_tasks(conn)
                report["waited_s"] = round(time.perf_counter() - started, 2)
                return report
            finally:
                await conn.close()

        started = time.perf_counter()
        return asyncio.run(run())

    async def _drain(self, conn: Any) -> int:
        """Drop queued jobs until the outbox, the jobs queue and the status queue are empty."""
        purged, end = 0, time.perf_counter() + 2 * self.timeout + 5
        while time.perf_counter() < end:
            purged += await asyncio.to_thread(self.stack.purge_jobs)
            depths = await asyncio.to_thread(self.stack.queue_depths)
            if not any(depths.values()) and await db.outbox_backlog(conn) == 0:
                await asyncio.sleep(0.1)  # prefetched jobs finish; their events get applied
                if not any((await asyncio.to_thread(self.stack.queue_depths)).values()):
                    break
            await asyncio.sleep(0.1)
        return purged
