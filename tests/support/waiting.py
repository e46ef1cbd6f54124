"""Waiting for an outcome (a queue message, a task state) with a deadline, never a fixed sleep.

``until`` (async) and ``until_sync`` (for tests driving processes over HTTP) are the suite's one
poll-until helper: re-check a probe until it returns something truthy, fail after ``timeout``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aio_pika.abc import AbstractIncomingMessage, AbstractQueue

T = TypeVar("T")
INTERVAL = 0.02


async def until(
    probe: Callable[[], Awaitable[T | None]], timeout: float = 30, what: str = "condition"
) -> T:
    """Re-check ``probe`` until it returns something truthy; fail after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(INTERVAL)


def until_sync(
    probe: Callable[[], T | None],
    timeout: float = 30,
    what: str = "condition",
    interval: float = 0.05,
) -> T:
    """``until`` for synchronous probes (HTTP polls, files, processes)."""
    end = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


async def next_message(queue: AbstractQueue, timeout: float = 30) -> AbstractIncomingMessage:
    async def probe() -> AbstractIncomingMessage | None:
        return await queue.get(no_ack=False, fail=False)

    return await until(probe, timeout, f"a message on {queue.name}")
