"""Long-running loops of an API worker (outbox relay, reaper): started in the lifespan,
cancelled at shutdown."""

from __future__ import annotations

import asyncio
import contextlib


class BackgroundLoop:
    """One named asyncio task running ``_run`` until ``stop``."""

    name = "background-loop"

    def __init__(self) -> None:
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        raise NotImplementedError
