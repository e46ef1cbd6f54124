"""A cross-process, cross-replica lock per render key, on the shared store volume.

Replicas that receive the same content at the same moment render it once: the first takes
the key's ``flock`` and renders; the others wait for the lock, find the PDF on disk and report
a ``disk`` hit. The kernel drops the lock when its holder dies, so a killed renderer never
leaves a key locked.

The holder removes the lock file on every way out of ``hold`` (stored, failed, cancelled),
while it still holds the lock, so lock files of failed keys do not pile up. A waiter that was
blocked on the removed file wakes up holding a lock on an unlinked inode: ``_try`` compares the
inode it locked with the one now at the path and starts over when they differ, so two
holders never exist at once. (A killed holder leaves its file behind; the next holder of that
key removes it.)
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
        """The fd of the key's locked lock file, or ``None`` while another holder has it."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self._path(key)
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return None
            try:
                current = os.stat(path).st_ino
            except FileNotFoundError:
                current = -1
            if current == os.fstat(fd).st_ino:
                return fd
            os.close(fd)  # the previous holder removed this file: lock the new one

    def _release(self, key: str, fd: int) -> None:
        path = self._path(key)
        try:  # the path is ours while we hold its lock: nobody can replace it meanwhile
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                path.unlink()
        except FileNotFoundError:
            pass
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    @asynccontextmanager
    async def hold(self, key: str, timeout: float) -> AsyncIterator[None]:
        """Hold the key's lock; raise a retryable ``StoreError`` after ``timeout`` seconds.
        The lock file is removed on the way out, whatever happened inside."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while (fd := await asyncio.to_thread(self._try, key)) is None:
            if loop.time() > end:
                raise StoreError(f"waited {timeout:g} s for another renderer to render this key")
            await asyncio.sleep(POLL_SECONDS)
        try:
            yield
        finally:
            self._release(key, fd)
