"""Learn of SIGTERM/SIGINT before uvicorn's lifespan shutdown does.

uvicorn stops in this order: stop accepting, wait for open responses (up to
``timeout_graceful_shutdown``), and only then run the lifespan's shutdown. An event stream is an
open response that never ends by itself, so the app must hear the signal first: the handler
uvicorn installed is wrapped (it still runs), and ours only schedules ``callback`` on the loop.
Outside the main thread (uvicorn installs no handlers there) this does nothing.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class ExitSignals:
    """Chains ``callback`` in front of the current SIGINT/SIGTERM handlers until ``remove``."""

    def __init__(self, callback: Callable[[], None]) -> None:
        self.callback = callback
        self._previous: dict[int, Any] = {}
        self._handler: Callable[[int, FrameType | None], None] | None = None

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        loop = asyncio.get_running_loop()

        def handler(sig: int, frame: FrameType | None) -> None:
            if not loop.is_closed():
                loop.call_soon_threadsafe(self.callback)
            previous = self._previous.get(sig)
            if callable(previous):
                previous(sig, frame)
            elif previous == signal.SIG_DFL:  # what would have happened without us
                signal.signal(sig, signal.SIG_DFL)
                signal.raise_signal(sig)

        for sig in SIGNALS:
            self._previous[sig] = signal.getsignal(sig)
            signal.signal(sig, handler)
        self._handler = handler

    def remove(self) -> None:
        """Put the previous handlers back, unless someone replaced ours meanwhile."""
        for sig, previous in self._previous.items():
            if previous is not None and signal.getsignal(sig) is self._handler:
                signal.signal(sig, previous)
        self._previous.clear()
