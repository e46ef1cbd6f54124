"""Repeated denials from one client are counted per window instead of written one row each.

Per (client address, actor) and window of ``denial_audit_window_seconds``, the first
``denial_audit_burst`` denials are audited one row each (with their request id); the rest are
counted and written as one ``denial.repeated`` entry (``count`` = how many, ``detail`` = the
count per action and outcome) when the window ends. A count that cannot be written (the API
stops first, or the write fails) is logged with the client, the actor and the counts.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from snapshot_api.db import audit

log = logging.getLogger(__name__)
MAX_CLIENTS = 10_000  # windows kept at once; past that, ended windows are dropped first

Key = tuple[str | None, str | None]


@dataclass
class _Window:
    start: float
    seen: int = 0
    over: Counter[str] = field(default_factory=Counter)
    written: bool = False


class DenialWindows:
    """The open windows of one API process."""

    def __init__(self, window_seconds: float, burst: int) -> None:
        self.window_seconds = window_seconds
        self.burst = burst
        self._windows: dict[Key, _Window] = {}
        self._flushes: set[asyncio.Task[None]] = set()

    def admit(self, key: Key, action: str, outcome: str, pool: Any) -> bool:
        """True when this denial gets its own audit row; False when it is counted instead."""
        now = time.monotonic()
        window = self._windows.get(key)
        if window is None or now - window.start >= self.window_seconds:
            if len(self._windows) >= MAX_CLIENTS:
                self._drop_ended(now)
            window = self._windows[key] = _Window(start=now)
        window.seen += 1
        if window.seen <= self.burst:
            return True
        if not window.over:
            task = asyncio.get_running_loop().create_task(self._flush_later(key, window, pool))
            self._flushes.add(task)
            task.add_done_callback(self._flushes.discard)
        window.over[f"{action}:{outcome}"] += 1
        return False

    def _drop_ended(self, now: float) -> None:
        for key in [k for k, w in self._windows.items() if now - w.start >= self.window_seconds]:
            if not self._windows[key].over:  # windows with counts are removed by their flush
                del self._windows[key]

    async def _flush_later(self, key: Key, window: _Window, pool: Any) -> None:
        await asyncio.sleep(max(0.0, window.start + self.window_seconds - time.monotonic()))
        await self._write(key, window, pool)

    async def flush_all(self, pool: Any) -> None:
        """Write every open window's count now (the API is stopping)."""
        for task in list(self._flushes):
            task.cancel()
        for key, window in list(self._windows.items()):
            if window.over:
                await self._write(key, window, pool)

    async def _write(self, key: Key, window: _Window, pool: Any) -> None:
        if window.written:
            return
        window.written = True
        if self._windows.get(key) is window:
            del self._windows[key]
        client, actor = key
        detail = {"window_seconds": self.window_seconds, "by_action": dict(window.over)}
        try:
            await audit.record(
                pool,
                audit.AuditContext(actor, None, client),
                "denial.repeated",
                "aggregated",
                detail=detail,
                count=sum(window.over.values()),
            )
        except BaseException:
            log.error(
                "repeated denials not audited: client=%r actor=%r counts=%s",
                client,
                actor,
                dict(window.over),
            )
            raise
