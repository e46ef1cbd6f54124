"""Fair turns at the worker pool: cache misses of many users share the workers round robin.

A render takes a turn before it gets a worker. There are as many turns as workers, so the pool
itself never queues; a user holds at most ``per_user`` turns at once, and when a turn frees up
it goes to the waiting user served least recently (round robin; a user new to the queue comes
first; first come, first served within one user). One user's burst of misses therefore waits
behind its own renders, not in front of everyone else's: another user's miss gets the next
free worker. Cache hits never come here.

A short render (a piece of a big room, a few pages) may *borrow* a turn past its user's share
when no user under its share is waiting: one user's big room then renders on every worker, and
another user's miss waits at most for one piece to finish before the next free turn is its own
(a user under its share always comes before a borrower). Whole documents never borrow: a long
render holding every worker would make everyone else wait for it.

``close`` (shutdown) fails every waiting render with ``QueueClosed`` so its delivery is handed
back to the broker at once; renders that already hold a turn finish.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from snapshot_renderer import metrics


class QueueClosed(Exception):
    """The renderer is shutting down: a render still waiting for a turn will not get one."""


class FairQueue:
    """``slots`` turns (one per worker), at most ``per_user`` of them held by one user."""

    def __init__(self, slots: int, per_user: int) -> None:
        if slots < 1 or per_user < 1:
            raise ValueError("slots and per_user must be at least 1")
        self.slots = slots
        self.per_user = min(per_user, slots)
        self._free = slots
        self._running: dict[str, int] = {}
        # Users with renders waiting, in order of arrival, and when each was last served.
        self._waiting: OrderedDict[str, deque[asyncio.Future[None]]] = OrderedDict()
        self._served: dict[str, int] = {}
        self._turns_given = 0
        self._closed = False
        self._borrowers: dict[asyncio.Future[None], bool] = {}  # waiter -> may borrow

    @property
    def waiting(self) -> int:
        """Renders waiting for a turn."""
        return sum(len(q) for q in self._waiting.values())

    def running(self, user: str) -> int:
        """Turns ``user`` holds now."""
        return self._running.get(user, 0)

    @asynccontextmanager
    async def turn(self, user: str, borrow: bool = False) -> AsyncIterator[None]:
        """Wait for a turn of ``user``'s (fair among users), hold it for the block; with
        ``borrow``, past the user's share while nobody under theirs waits."""
        await self._acquire(user, borrow)
        try:
            yield
        finally:
            self._release(user)

    async def _acquire(self, user: str, borrow: bool) -> None:
        if self._closed:
            raise QueueClosed("the renderer is shutting down")
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._borrowers[waiter] = borrow
        self._waiting.setdefault(user, deque()).append(waiter)
        self._dispatch()  # a free turn goes to it at once (awaiting a done future is instant)
        metrics.JOBS_WAITING.inc()
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self._release(user)  # granted just as it was cancelled: give the turn back
            else:
                self._forget(user, waiter)
            raise
        finally:
            self._borrowers.pop(waiter, None)
            metrics.JOBS_WAITING.dec()

    def _grant(self, user: str) -> None:
        self._free -= 1
        self._running[user] = self.running(user) + 1
        self._turns_given += 1
        self._served[user] = self._turns_given

    def _release(self, user: str) -> None:
        self._free += 1
        left = self.running(user) - 1
        if left:
            self._running[user] = left
        else:
            self._running.pop(user, None)
            if user not in self._waiting:
                self._served.pop(user, None)  # idle: forgotten, so memory stays bounded
        self._dispatch()

    def _forget(self, user: str, waiter: asyncio.Future[None]) -> None:
        queue = self._waiting.get(user)
        if queue is not None and waiter in queue:
            queue.remove(waiter)
            if not queue:
                del self._waiting[user]

    def _dispatch(self) -> None:
        """Hand free turns to waiting users below their cap, the one served least recently
        first (never served: first of all; ties: who came first); then, with nobody below
        their cap waiting, to users whose next render may borrow, the same way."""
        while self._free and self._waiting:
            eligible = [u for u in self._waiting if self.running(u) < self.per_user]
            if not eligible:
                eligible = [u for u in self._waiting if self._borrowers.get(self._waiting[u][0])]
            if not eligible:
                return
            user = min(eligible, key=lambda u: self._served.get(u, 0))
            queue = self._waiting[user]
            waiter = queue.popleft()
            if not queue:
                del self._waiting[user]
            if waiter.done():  # cancelled while waiting: its caller forgets it
                continue
            self._grant(user)
            waiter.set_result(None)

    def close(self) -> None:
        """Fail every waiting render with ``QueueClosed``; new requests fail at once."""
        self._closed = True
        waiting, self._waiting = self._waiting, OrderedDict()
        for queue in waiting.values():
            for waiter in queue:
                if not waiter.done():
                    waiter.set_exception(QueueClosed("the renderer is shutting down"))
