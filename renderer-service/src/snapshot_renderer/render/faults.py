"""Fault hooks for tests only: make a render crash, wait until released, or eat memory.

Each hook is off unless its test-only setting is given (``SNAPSHOT_RENDERER_*_TEST_*``), and it
applies only to rooms whose name contains its marker, so a test drives exactly one job into it.
Production never sets them. They run inside the worker process, at the start of a render.

The hold hook is a rendezvous, not a delay: the worker creates a FIFO named
``<pid>-<n>.fifo`` in ``hold_dir`` and blocks opening it for reading; the test finds the new
FIFO, opens its write end (the render is now known to be in progress, in that pid) and closes
it to let the render go on (``tests/support/holds.py``). Never released, it holds until killed.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)
BLOAT_CHUNK = 32 * 2**20
BLOAT_CAP = 2 * 2**30  # stop allocating here and wait to be killed
_holds = itertools.count()


@dataclass(frozen=True)
class FaultHooks:
    """Which rooms (by a marker in their name) crash, hold or bloat their worker."""

    crash_marker: str | None = None
    hold_marker: str | None = None
    hold_dir: str | None = None
    bloat_marker: str | None = None


def _marked(marker: str | None, room_name: str) -> bool:
    return bool(marker) and marker in room_name  # type: ignore[operator]


def inject(hooks: FaultHooks, payload: dict[str, Any]) -> None:
    """Run the hooks whose marker the payload's room name contains (tests only)."""
    name = str(payload.get("room", {}).get("name", ""))
    if _marked(hooks.crash_marker, name):
        log.error("fault injection: crashing this worker on purpose")
        os.abort()
    if _marked(hooks.hold_marker, name) and hooks.hold_dir:
        hold(hooks.hold_dir)
    if _marked(hooks.bloat_marker, name):
        bloat()


def hold(directory: str) -> None:
    """Block until a test opens and closes this render's FIFO."""
    path = os.path.join(directory, f"{os.getpid()}-{next(_holds)}.fifo")
    os.mkfifo(path)
    log.warning("fault injection: render held until %s is released", path)
    try:
        with open(path, "rb") as fifo:  # returns once the test opens the write end
            fifo.read()  # returns once the test closes it
    finally:
        os.unlink(path)


def bloat() -> None:
    """Allocate (and touch) memory until killed; past ``BLOAT_CAP``, just wait to be killed."""
    log.warning("fault injection: allocating memory until this worker is stopped")
    hoard = [b"\x01" * BLOAT_CHUNK for _ in range(BLOAT_CAP // BLOAT_CHUNK)]
    threading.Event().wait()
    hoard.clear()
