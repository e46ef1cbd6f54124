"""In-process LRU of rendered PDFs, bounded in bytes (DESIGN §6)."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from snapshot_renderer import metrics


@dataclass(frozen=True)
class CachedPdf:
    """A rendered PDF and what the completed event reports about it."""

    pdf: bytes
    pages: int
    pdf_sha256: str
    # What a piece's neighbours and assembly need of it (``pieces.stored``); None for documents.
    piece: dict[str, Any] | None = None

    @property
    def size(self) -> int:
        """Bytes the entry costs (the PDF; the rest is negligible)."""
        return len(self.pdf)


class MemoryCache:
    """Least-recently-used cache whose bound is a byte count, not an entry count."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, CachedPdf] = OrderedDict()
        self._bytes = 0

    @property
    def bytes_used(self) -> int:
        """Bytes held by all entries."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def get(self, key: str) -> CachedPdf | None:
        """The entry for ``key`` (now the most recently used), or ``None``."""
        entry = self._entries.get(key)
        metrics.CACHE_REQUESTS.labels("memory", "miss" if entry is None else "hit").inc()
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def put(self, key: str, entry: CachedPdf) -> bool:
        """Store ``entry``, evicting the oldest ones; an entry bigger than the bound is skipped."""
        if entry.size > self.max_bytes:
            return False
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= old.size
        self._entries[key] = entry
        self._bytes += entry.size
        while self._bytes > self.max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self._bytes -= evicted.size
            metrics.CACHE_EVICTIONS.labels("memory").inc()
        self._publish()
        return True

    def discard(self, key: str) -> None:
        """Forget ``key`` if present."""
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= old.size
            self._publish()

    def _publish(self) -> None:
        metrics.CACHE_BYTES.labels("memory").set(self._bytes)
        metrics.CACHE_ENTRIES.labels("memory").set(len(self._entries))
