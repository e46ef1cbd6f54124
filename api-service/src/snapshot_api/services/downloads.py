"""Downloads: the PDF of a completed snapshot, read from the shared store."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import unicodedata
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


def _intact(path: Path, size: int, sha256: str) -> bool:
    """Whether the stored PDF is there and is exactly the rendered one."""
    try:
        with path.open("rb") as f:
            if os.fstat(f.fileno()).st_size != size:
                return False
            return hashlib.file_digest(f, "sha256").hexdigest() == sha256
    except FileNotFoundError:
        return False


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
    if not await asyncio.to_thread(_intact, path, size, row["pdf_sha256"]):
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
