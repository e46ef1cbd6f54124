"""The reaper: fails tasks that passed their deadline, so nothing stays queued or rendering.

Every API worker runs one; ``SKIP LOCKED`` keeps them from working on the same rows.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import asyncpg

from snapshot_api.background import BackgroundLoop
from snapshot_api.db import snapshots, tasks

log = logging.getLogger(__name__)
BATCH = 100
MESSAGE = "The render did not finish before the task deadline"


class Reaper(BackgroundLoop):
    name = "task-reaper"

    def __init__(
        self,
        pool: asyncpg.Pool,
        interval_seconds: float,
        on_reaped: Callable[[], None] | None = None,
    ) -> None:
        super().__init__()
        self.pool = pool
        self.interval = interval_seconds
        self.on_reaped = on_reaped  # called after tasks were failed (their users' slots free)

    async def _run(self) -> None:
        while True:
            try:
                while await self.reap_once() == BATCH:
                    pass
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the next round tries again
                log.warning("reaper round failed: %s", exc)
            await asyncio.sleep(self.interval)

    async def reap_once(self) -> int:
        """Fail one batch of overdue tasks and their unfinished snapshots; return the count."""
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await tasks.reap(conn, BATCH)
            if rows:
                await snapshots.fail_unfinished(
                    conn, [r["snapshot_id"] for r in rows], "deadline_exceeded", MESSAGE
                )
        for row in rows:
            log.warning("task failed: deadline exceeded", extra={"task_id": str(row["id"])})
        if rows and self.on_reaped is not None:
            self.on_reaped()
        return len(rows)
