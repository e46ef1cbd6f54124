"""The test side of the renderer's hold hook (``SNAPSHOT_RENDERER_HOLD_TEST_*``).

A render of a room whose name contains the marker creates a FIFO ``<pid>-<n>.fifo`` in the hold
directory and blocks until it is opened and closed. ``next()`` waits for a hold not seen
before and opens its write end: from then on the render is known to be in progress (in the
worker ``Hold.pid``) and stays there until ``release()``. Every render that reaches the hook is
counted, so a test can count real renders.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import tempfile
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from support.waiting import until, until_sync

MARKER = "hold-test-marker-5c1e"


def hold_settings(holds: Holds) -> dict[str, object]:
    """``Settings.model_copy(update=...)`` values that turn the hook on in-process."""
    return {"hold_test_marker": MARKER, "hold_test_dir": holds.directory}


@dataclass
class Hold:
    """One render waiting in the hook; ``release()`` lets it go on."""

    path: Path
    fd: int

    @property
    def pid(self) -> int:
        return int(self.path.name.split("-", 1)[0])

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


@dataclass
class Holds:
    """The hold directory and every hold seen in it."""

    directory: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="holds-")))
    seen: list[Hold] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        """Renderer environment that turns the hook on."""
        return {
            "SNAPSHOT_RENDERER_HOLD_TEST_MARKER": MARKER,
            "SNAPSHOT_RENDERER_HOLD_TEST_DIR": str(self.directory),
        }

    @property
    def count(self) -> int:
        """Renders that reached the hook so far."""
        return len(self.seen)

    def _open_new(self) -> Hold | None:
        known = {hold.path for hold in self.seen}
        for path in sorted(self.directory.glob("*.fifo")):
            if path in known:
                continue
            try:
                fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:  # ENXIO: created, its reader not there yet; ENOENT: gone
                if exc.errno in (errno.ENXIO, errno.ENOENT):
                    continue
                raise
            hold = Hold(path, fd)
            self.seen.append(hold)
            return hold
        return None

    async def next(self, timeout: float = 120) -> Hold:
        """Wait for a render to reach the hook (one not seen before) and hold it there."""

        async def probe() -> Hold | None:
            return self._open_new()

        return await until(probe, timeout, f"a render held in {self.directory}")

    def next_sync(self, timeout: float = 120) -> Hold:
        return until_sync(self._open_new, timeout, f"a render held in {self.directory}")

    def close(self) -> None:
        """Release every hold and remove the directory."""
        for hold in self.seen:
            hold.release()
        for path in self.directory.iterdir():
            path.unlink()
        self.directory.rmdir()


@asynccontextmanager
async def passing(holds: Holds) -> AsyncIterator[Holds]:
    """Within the block, every new hold is released as soon as it is seen (and counted), so an
    unexpected render is counted instead of hanging the test."""

    async def release_each() -> None:
        while True:
            (await holds.next(timeout=3600)).release()

    task = asyncio.ensure_future(release_each())
    try:
        yield holds
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@contextmanager
def releasing(holds: Holds) -> Iterator[None]:
    """``passing`` for tests driving processes synchronously: within the block, every new hold
    is released as soon as it is seen (each one is still counted), from a thread."""
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            try:
                holds.next_sync(timeout=1).release()
            except AssertionError:  # none within the second: look again
                continue

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
