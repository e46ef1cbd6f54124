"""Downloads: the PDF of a completed snapshot, read from the shared store.

A PDF is verified against its ``pdf_sha256`` before it is served, but not on every request (a
player's Range requests would each re-hash the whole file): ``VerifiedFiles`` remembers the
verified identity of each file, (device, inode, size, mtime, ctime) in nanoseconds, and hashes
again whenever any of them differs. The store replaces files by rename (a new inode), and
any write in place moves mtime and ctime, which user space cannot set back. File timestamps
are coarse (a kernel tick), so a write within the same tick as the last change could go
unseen: files changed less than ``settle_seconds`` ago are hashed on every request.

Each served download touches the PDF's use mark (at most once a minute per key and process),
so the renderers' LRU eviction sees downloads as uses.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import threading
import time
import unicodedata
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote
from uuid import UUID

import asyncpg
from snapshot_shared import store

from snapshot_api.db import audit
from snapshot_api.errors import ArtifactMissing, NotReady
from snapshot_api.services import render_jobs
from snapshot_api.services.access import Actor
from snapshot_api.services.queries import visible_snapshot
from snapshot_api.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Download:
    path: Path
    etag: str
    filename: str
    size: int

    @property
    def content_disposition(self) -> str:
        ascii_name = self.filename.encode("ascii", "ignore").decode() or "snapshot.pdf"
        return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(self.filename)}"


_Identity = tuple[int, int, int, int, int]


class VerifiedFiles:
    """Which stored PDFs were hashed and found intact, by their file-system identity."""

    def __init__(self, capacity: int = 4096, settle_seconds: float = 2.0) -> None:
        self.capacity = capacity
        self.settle_seconds = settle_seconds
        self.hashed = 0  # files hashed so far (for tests and curiosity)
        self._seen: OrderedDict[Path, tuple[_Identity, str]] = OrderedDict()
        self._lock = threading.Lock()

    def intact(self, path: Path, size: int, sha256: str) -> bool:
        """Whether ``path`` is exactly the rendered PDF (blocking)."""
        try:
            with path.open("rb") as f:
                st = os.fstat(f.fileno())
                if st.st_size != size:
                    return False
                ident = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
                with self._lock:
                    if self._seen.get(path) == (ident, sha256):
                        self._seen.move_to_end(path)
                        return True
                    self.hashed += 1
                if hashlib.file_digest(f, "sha256").hexdigest() != sha256:
                    return False
        except FileNotFoundError:
            return False
        if time.time() - st.st_ctime_ns / 1e9 > self.settle_seconds:
            with self._lock:
                self._seen[path] = (ident, sha256)
                self._seen.move_to_end(path)
                while len(self._seen) > self.capacity:
                    self._seen.popitem(last=False)
        return True


class UseMarks:
    """Touches a key's use mark at most once per ``interval`` seconds in this process."""

    def __init__(self, interval: float = 60.0, capacity: int = 4096) -> None:
        self.interval = interval
        self.capacity = capacity
        self._last: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def touch(self, uses: Path, key: str) -> None:
        """Record a use of ``key`` (blocking); a read-only or full volume is only logged."""
        now = time.monotonic()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.interval:
                return
            self._last[key] = now
            self._last.move_to_end(key)
            while len(self._last) > self.capacity:
                self._last.popitem(last=False)
        try:
            store.touch_use(uses, key)
        except OSError as exc:
            log.warning("cannot record a download as a use: %s", exc)


# Per process (each uvicorn worker keeps its own): plain memory, no client or connection.
VERIFIED = VerifiedFiles()
USES = UseMarks()


def _serve_check(settings: Settings, key: str, size: int, sha256: str) -> bool:
    """Verify (at most once per file identity) and record the use (blocking)."""
    if not VERIFIED.intact(store.pdf_path(settings.store_dir, key), size, sha256):
        return False
    USES.touch(store.uses_root(settings.store_dir, settings.store_uses_dir), key)
    return True


def file_name(room_name: str, created: str) -> str:
    """A readable file name: ``design-review-2026-11-25.pdf``."""
    text = unicodedata.normalize("NFKC", room_name).lower()
    slug = re.sub(r"[^\w]+", "-", text, flags=re.UNICODE).strip("-_")[:60] or "snapshot"
    return f"{slug}-{created}.pdf"


async def prepare(
    pool: asyncpg.Pool, settings: Settings, actor: Actor, snapshot_id: UUID
) -> Download:
    """The PDF to serve; if it left the store, a re-render from the stored payload starts and
    the caller gets a 503 with ``Retry-After`` (the re-rendered PDF has the same ETag)."""
    row = await visible_snapshot(pool, actor, snapshot_id)
    if row["status"] != "completed" or not row["artifact_key"]:
        raise NotReady(
            f"The snapshot is {row['status']}; download it once its task has completed",
            status_now=row["status"],
        )
    path = store.pdf_path(settings.store_dir, row["artifact_key"])
    size = row["artifact_bytes"]
    key, digest = row["artifact_key"], row["pdf_sha256"]
    if not await asyncio.to_thread(_serve_check, settings, key, size, digest):
        task_id = await render_jobs.rerender(pool, settings, row, actor.request_id)
        log.warning(
            "PDF missing from the store; re-rendering",
            extra={"snapshot_id": str(snapshot_id), "task_id": str(task_id)},
        )
        raise ArtifactMissing("The PDF is being rendered again; retry in a few seconds")
    await audit.record(
        pool, actor.audit, "snapshot.download", "served", row["room_id"], snapshot_id
    )
    return Download(
        path=path,
        etag=f'"{row["pdf_sha256"]}"',
        filename=file_name(row["room_name"], row["created_at"].date().isoformat()),
        size=size,
    )
