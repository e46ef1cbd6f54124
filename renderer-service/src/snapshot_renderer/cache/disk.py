"""The content-addressed PDF store on the shared volume (DESIGN §6); the API reads it too.

Layout (``snapshot_shared.store``): ``ab/cd/<key>.pdf`` with ``ab/cd/<key>.json`` beside it,
the metadata ``{"pdf_sha256", "bytes", "pages", "created_at"}``.

Write order: each file is written to a temp file in its shard directory, flushed, fsynced and
renamed over its final name; the metadata first, the PDF last, then the directory is fsynced.
So a reader that finds ``<key>.pdf`` always finds a complete ``<key>.json`` too (renders are
deterministic, so a concurrent rewrite of the same key carries the same digest). Deletion runs
the other way: the PDF first, then the metadata.

Reads verify the PDF against ``pdf_sha256``; a mismatch or missing/invalid metadata deletes the
entry and reports a miss (it gets re-rendered). So does anything but a regular file at the PDF's
path (a symlink is not followed): the API refuses to serve those.

The bound holds for the volume, not per replica: replicas sharing the volume keep one total in
the store's size ledger (``cache/ledger.py``), and publish (rename) or delete entries only while
holding its lock, so the total counts every replica's entries. When a write takes the total over
``max_bytes``, that replica, still under the lock, scans the volume's real contents and evicts
the least recently used entries down to ``low_water`` of the bound; the scan's figure becomes the
new total. An entry's last use is the newer of its PDF's mtime (written) and its use mark's mtime
(``snapshot_shared.store``: touched by renderer hits and by API downloads), so a downloaded PDF
counts as used though the API only reads the store. Overshoot is bounded by what is in flight: a
write's temp files are counted once renamed. All methods meant for the event loop are ``async``
and run the file I/O in a thread.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import errno
import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from stat import S_ISREG
from typing import Any, Literal

from snapshot_shared.store import last_use, meta_path, pdf_path, touch_use, use_mark, uses_root

from snapshot_renderer import metrics
from snapshot_renderer.cache.ledger import Ledger
from snapshot_renderer.cache.memory import CachedPdf
from snapshot_renderer.errors import StoreError

log = logging.getLogger(__name__)
ReadResult = Literal["hit", "miss", "corrupt"]
STALE_TEMP_SECONDS = 3600
FILE_MODE = 0o644


@dataclass(frozen=True)
class _Entry:
    key: str
    used: float  # the newer of the PDF's mtime and its use mark's
    size: int


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _unlink(path: Path) -> int:
    """Delete ``path`` if present; return the bytes freed."""
    size = _size(path)
    try:
        path.unlink()
    except FileNotFoundError:
        return 0
    return size


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _temp_copy(path: Path, data: bytes) -> Path:
    """A fsynced temp file holding ``data`` in ``path``'s directory, to rename over ``path``."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), FILE_MODE)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def _is_leftover(path: Path) -> bool:
    """A temp file of an interrupted write, or metadata whose PDF never arrived."""
    if path.name.startswith("."):
        return True
    return path.suffix == ".json" and not path.with_suffix(".pdf").exists()


_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def _read_regular(path: Path) -> bytes | None:
    """``path``'s bytes if it is a regular file, ``None`` for a symlink, FIFO or anything else
    planted there (the API refuses those too, so the entry must be rewritten); raises
    ``FileNotFoundError`` when nothing is there."""
    try:
        fd = os.open(path, _READ_FLAGS)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return None
        raise
    with os.fdopen(fd, "rb") as f:
        if not S_ISREG(os.fstat(fd).st_mode):
            return None
        return f.read()


def _valid_meta(raw: bytes, pdf: bytes) -> tuple[int, dict[str, Any] | None] | None:
    """The page count and piece facts if ``raw`` is metadata that matches ``pdf``, else
    ``None``."""
    try:
        meta = json.loads(raw)
        pages, size, digest = meta["pages"], meta["bytes"], meta["pdf_sha256"]
        piece = meta.get("piece")
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
    if not isinstance(pages, int) or size != len(pdf):
        return None
    if piece is not None and not isinstance(piece, dict):
        return None
    return (pages, piece) if digest == hashlib.sha256(pdf).hexdigest() else None


class DiskStore:
    """Verified, byte-bounded, atomically written PDF store shared by renderer replicas."""

    def __init__(
        self, root: Path, max_bytes: int, low_water: float = 0.9, uses: Path | None = None
    ) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.low_water = low_water
        self.uses = uses_root(root, uses)
        self.ledger = Ledger(root)
        self._bytes = 0

    @property
    def bytes_used(self) -> int:
        """Bytes of PDFs and metadata in the store (all replicas'), as last seen in the ledger."""
        return self._bytes

    def _seen(self, total: int) -> int:
        self._bytes = total
        metrics.CACHE_BYTES.labels("disk").set(total)
        return total

    # -- blocking implementations (run in a thread) -------------------------------------------

    def _last_use(self, key: str, mtime: float) -> float:
        used = last_use(self.uses, key)
        return mtime if used is None else max(mtime, used)

    def _entries(self) -> list[_Entry]:
        """Every complete entry with its last use and size; removes stale temp files."""
        entries = []
        now = time.time()
        for path in self.root.glob("??/??/*"):
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            if now - stat.st_mtime > STALE_TEMP_SECONDS and _is_leftover(path):
                path.unlink(missing_ok=True)
                continue
            if path.suffix == ".pdf":
                size = stat.st_size + _size(path.with_suffix(".json"))
                entries.append(_Entry(path.stem, self._last_use(path.stem, stat.st_mtime), size))
        return entries

    def scan(self) -> int:
        """Recount the volume's bytes into the ledger (blocking); called at start-up."""
        self.root.mkdir(parents=True, exist_ok=True)
        with self.ledger.locked() as ledger:
            return self._seen(ledger.set(sum(entry.size for entry in self._entries())))

    def read_sync(self, key: str) -> tuple[ReadResult, CachedPdf | None]:
        """Read and verify one entry (blocking)."""
        pdf_file, meta_file = pdf_path(self.root, key), meta_path(self.root, key)
        try:
            pdf = _read_regular(pdf_file)
        except FileNotFoundError:
            return "miss", None
        try:
            valid = None if pdf is None else _valid_meta(meta_file.read_bytes(), pdf)
        except FileNotFoundError:
            valid = None
        if pdf is None or valid is None:
            log.warning("corrupt store entry dropped", extra={"key": key})
            with self.ledger.locked() as ledger:
                self._seen(ledger.set(ledger.value - self.delete_sync(key)))
            return "corrupt", None
        try:
            touch_use(self.uses, key)
        except OSError:
            pass
        pages, piece = valid
        digest = hashlib.sha256(pdf).hexdigest()
        return "hit", CachedPdf(pdf=pdf, pages=pages, pdf_sha256=digest, piece=piece)

    def write_sync(self, key: str, entry: CachedPdf) -> int:
        """Write one entry atomically, metadata first, PDF last (blocking); the new total."""
        pdf_file, meta_file = pdf_path(self.root, key), meta_path(self.root, key)
        meta: dict[str, Any] = {
            "pdf_sha256": entry.pdf_sha256,
            "bytes": len(entry.pdf),
            "pages": entry.pages,
            "created_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        }
        if entry.piece is not None:
            meta["piece"] = entry.piece
        raw_meta = json.dumps(meta, sort_keys=True).encode()
        pdf_file.parent.mkdir(parents=True, exist_ok=True)
        temps = [
            (_temp_copy(meta_file, raw_meta), meta_file),
            (_temp_copy(pdf_file, entry.pdf), pdf_file),
        ]
        try:
            with self.ledger.locked() as ledger:
                before = _size(pdf_file) + _size(meta_file)
                for tmp, final in temps:
                    os.replace(tmp, final)
                total = ledger.set(ledger.value + len(raw_meta) + len(entry.pdf) - before)
        finally:
            for tmp, _ in temps:
                tmp.unlink(missing_ok=True)
        _fsync_dir(pdf_file.parent)
        return self._seen(total)

    def delete_sync(self, key: str) -> int:
        """Remove one entry, PDF first (blocking); return the bytes freed. The caller holds
        the ledger's lock and subtracts them."""
        freed = _unlink(pdf_path(self.root, key)) + _unlink(meta_path(self.root, key))
        use_mark(self.uses, key).unlink(missing_ok=True)
        return freed

    def evict_sync(self, keep: str | None = None) -> int:
        """If the volume holds more than the bound, drop least recently used entries until
        under ``low_water`` of it (blocking, under the ledger's lock); return how many."""
        with self.ledger.locked() as ledger:
            entries = sorted(self._entries(), key=lambda e: e.used)
            total = sum(entry.size for entry in entries)
            target = int(self.max_bytes * self.low_water)
            evicted = 0
            for entry in entries if total > self.max_bytes else []:
                if total <= target:
                    break
                if entry.key == keep:
                    continue
                total -= self.delete_sync(entry.key)
                evicted += 1
            self._seen(ledger.set(total))
        metrics.CACHE_EVICTIONS.labels("disk").inc(evicted)
        return evicted

    def exists_sync(self, key: str) -> bool:
        """Whether both files of an entry are present (blocking)."""
        return pdf_path(self.root, key).is_file() and meta_path(self.root, key).is_file()

    # -- event-loop API ------------------------------------------------------------------------

    async def open(self) -> None:
        """Create the root and count its bytes, off the event loop."""
        total = await asyncio.to_thread(self.scan)
        log.info("disk store opened", extra={"root": str(self.root), "bytes": total})
        if total > self.max_bytes:
            await asyncio.to_thread(self.evict_sync)

    async def read(self, key: str) -> CachedPdf | None:
        """The verified entry for ``key``, or ``None`` (missing, or corrupt and now dropped)."""
        try:
            result, entry = await asyncio.to_thread(self.read_sync, key)
        except OSError as exc:
            raise StoreError(f"cannot read the PDF store: {exc}") from exc
        metrics.CACHE_REQUESTS.labels("disk", result).inc()
        return entry

    async def write(self, key: str, entry: CachedPdf) -> None:
        """Store ``entry`` durably, then evict if the store went over its bound."""
        try:
            total = await asyncio.to_thread(self.write_sync, key, entry)
            if total > self.max_bytes:
                await asyncio.to_thread(self.evict_sync, key)
        except OSError as exc:
            raise StoreError(f"cannot write the PDF store: {exc}") from exc

    async def missing(self, keys: Sequence[str]) -> list[str]:
        """Those of ``keys`` not in the store (not verified), in one trip to a thread."""
        try:
            return await asyncio.to_thread(lambda: [k for k in keys if not self.exists_sync(k)])
        except OSError as exc:
            raise StoreError(f"cannot read the PDF store: {exc}") from exc

    async def exists(self, key: str) -> bool:
        """Whether ``key`` is in the store (not verified)."""
        try:
            return await asyncio.to_thread(self.exists_sync, key)
        except OSError as exc:
            raise StoreError(f"cannot read the PDF store: {exc}") from exc
