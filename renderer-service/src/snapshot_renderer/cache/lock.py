"""A cross-process, cross-replica lock per render key, on the shared store volume.

Replicas that receive the same content at the same moment render it once: the first takes
the key's ``flock`` and renders; the others wait for the lock, find the PDF on disk and report
a ``disk`` hit. The kernel drops the lock when its holder dies, so a killed renderer never
leaves a key locked. Lock files are removed once the PDF is stored: a later taker re-checks
the store first, so a fresh inode cannot lead to a second render of a stored key.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from snapshot_shared.store import check_key

from snapshot_renderer.errors import StoreError

POLL_SECONDS = 0.05


class KeyLocks:
    def __init__(self, root: Path) -> None:
        self.folder = root / ".locks"

    def _path(self, key: str) -> Path:
        return self.folder / f"{check_key(key)}.lock"

    def _try(self, key: str) -> int | None:
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._path(key), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return fd

    @asynccontextmanager
    async def hold(self, key: str, timeout: float) -> AsyncIterator[None]:
        """Hold the key's lock; raise a retryable ``StoreError`` after ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while (fd := await asyncio.to_thread(self._try, key)) is None:
            if loop.time() > end:
                raise StoreError(f"waited {timeout:g} s for another renderer to render this key")
            await asyncio.sleep(POLL_SECONDS)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def forget(self, key: str) -> None:
        """Remove the key's lock file (after its PDF is stored)."""
        try:
            self._path(key).unlink()
        except FileNotFoundError:
            pass
