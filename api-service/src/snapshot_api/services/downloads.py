"""Downloads: the PDF of a completed snapshot, read from the shared store.

The PDF is opened once (no symlinks, a regular file), verified on that descriptor (its size,
``pdf_sha256`` and the content hash it carries; ``services.artifacts``, which also spares the
Range requests of one file a re-hash each) and the response streams from the same descriptor:
the file served is the file verified, whatever happens to the path meanwhile.

Each served download touches the PDF's use mark (at most once a minute per key and process),
so the renderers' LRU eviction sees downloads as uses.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import threading
import time
import unicodedata
from collections import OrderedDict
from dataclasses import dataclass
from io import BufferedReader
from pathlib import Path
from urllib.parse import quote
from uuid import UUID

import asyncpg
from snapshot_shared import store

from snapshot_api.db import audit
from snapshot_api.errors import ArtifactMissing, NotReady
from snapshot_api.services import artifacts, render_jobs
from snapshot_api.services.access import Actor
from snapshot_api.services.snapshots import visible_snapshot
from snapshot_api.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Download:
    """A verified PDF, open: whoever takes it closes ``file`` (``PdfFile`` does once sent)."""

    file: BufferedReader
    stat: os.stat_result
    etag: str
    filename: str

    @property
    def size(self) -> int:
        return self.stat.st_size

    def close(self) -> None:
        self.file.close()

    @property
    def content_disposition(self) -> str:
        ascii_name = self.filename.encode("ascii", "ignore").decode() or "snapshot.pdf"
        return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(self.filename)}"


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
USES = UseMarks()


def _open_checked(settings: Settings, expected: artifacts.Expected) -> BufferedReader | str:
    """The verified PDF, open, and its use recorded; or why it was refused (blocking)."""
    try:
        file = artifacts.open_verified(settings.store_dir, expected, artifacts.VERIFIED, "download")
    except artifacts.Refused as exc:
        return exc.reason
    USES.touch(store.uses_root(settings.store_dir, settings.store_uses_dir), expected.key)
    return file


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
    expected = artifacts.Expected(
        row["artifact_key"], row["artifact_bytes"], row["pdf_sha256"], row["content_hash"]
    )
    opened = await asyncio.to_thread(_open_checked, settings, expected)
    if isinstance(opened, str):
        task_id = await render_jobs.rerender(pool, settings, row, actor.request_id)
        log.warning(
            "PDF missing from the store or not this snapshot's (%s); re-rendering",
            opened,
            extra={"snapshot_id": str(snapshot_id), "task_id": str(task_id)},
        )
        raise ArtifactMissing("The PDF is being rendered again; retry in a few seconds")
    try:
        await audit.record(
            pool, actor.audit, "snapshot.download", "served", row["room_id"], snapshot_id
        )
        return Download(
            file=opened,
            stat=os.fstat(opened.fileno()),
            etag=f'"{row["pdf_sha256"]}"',
            filename=file_name(row["room_name"], row["created_at"].date().isoformat()),
        )
    except BaseException:
        opened.close()
        raise
