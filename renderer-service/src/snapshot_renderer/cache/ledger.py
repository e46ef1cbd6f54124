"""The store's size ledger: one small file on the volume that every replica updates.

``<store>/.ledger`` holds the bytes of all entries in the store, as a decimal number. Every
change to the store's contents happens inside ``Ledger.locked()`` (an exclusive ``flock`` on
the ledger file), together with the change to the number: the renames that publish an entry,
the deletions of eviction and of corrupt entries, and the scans that recount the volume. So
the number is the volume's real total, whichever replica wrote what, and one replica at a time
evicts, from a scan of the real contents. Threads of one process exclude each other too: each
``locked()`` opens its own file description.

The only drift: a replica killed inside ``locked()`` between a rename and the new number
leaves the ledger short by that one entry, until the next scan (at every replica's start and
at every eviction) recounts it.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class LedgerFile:
    """The ledger while its lock is held: ``value`` to read, ``set`` to write."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        raw = os.pread(fd, 32, 0).strip()
        self.value = int(raw) if raw.isdigit() else 0

    def set(self, value: int) -> int:
        self.value = max(0, value)
        data = str(self.value).encode()
        os.pwrite(self._fd, data, 0)
        os.ftruncate(self._fd, len(data))
        return self.value


class Ledger:
    def __init__(self, root: Path) -> None:
        self.path = root / ".ledger"

    @contextmanager
    def locked(self) -> Iterator[LedgerFile]:
        """Hold the store-wide lock (blocking: call it in a thread)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield LedgerFile(fd)
        finally:
            os.close(fd)  # drops the lock

    def add(self, delta: int) -> int:
        """Add ``delta`` bytes; return the new total."""
        with self.locked() as ledger:
            return ledger.set(ledger.value + delta)
