"""How a document rendered in pieces (``documents``) reports itself: pieces done of the total
as the task's progress, with the running page count held against the limit, and the time of
each phase for its "assembled" log line."""

from __future__ import annotations

import time

from snapshot_renderer.coordinator import OnProgress
from snapshot_renderer.errors import TooManyPages
from snapshot_renderer.pieces.wire import SectionReply


class Phases:
    """How long each phase of a document took (ms), for its log line."""

    def __init__(self) -> None:
        self.began = self._last = time.perf_counter()
        self.ms: dict[str, float] = {}

    def mark(self, phase: str) -> None:
        now = time.perf_counter()
        self.ms[f"{phase}_ms"] = round((now - self._last) * 1000, 1)
        self._last = now


class Progress:
    """Pieces done of the total, reported as the task's progress (20-85 %), and the running
    page count against the limit."""

    def __init__(self, total: int, max_pages: int, report: OnProgress | None) -> None:
        self.total = total
        self.done = 0
        self.pages = 0
        self._max_pages = max_pages
        self._report = report

    async def piece(self, reply: SectionReply) -> None:
        """A section job's piece is done: counted and reported."""
        self.found(reply.pages or 0)
        await self.report()

    def found(self, pages: int) -> None:
        """A piece of ``pages`` pages is done (reported with the next ``report``)."""
        self.done += 1
        self.pages += pages
        if self.pages > self._max_pages:
            raise TooManyPages(
                f"the snapshot has more than {self.pages - 1} pages; the limit is {self._max_pages}"
            )

    async def report(self, phase: str = "rendering") -> None:
        if self._report is not None:
            await self._report(self.done, self.total, phase)
