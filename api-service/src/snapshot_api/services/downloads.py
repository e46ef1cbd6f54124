"""Downloads: the PDF of a completed snapshot, read from the shared store."""

from __future__ import annotations

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
from snapshot_api.services.access import Actor
from snapshot_api.services.queries import visible_snapshot


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


def file_name(room_name: str, created: str) -> str:
    """A readable file name: ``design-review-2026-11-25.pdf``."""
    text = unicodedata.normalize("NFKC", room_name).lower()
    slug = re.sub(r"[^\w]+", "-", text, flags=re.UNICODE).strip("-_")[:60] or "snapshot"
    return f"{slug}-{created}.pdf"


async def prepare(pool: asyncpg.Pool, store_dir: Path, actor: Actor, snapshot_id: UUID) -> Download:
    row = await visible_snapshot(pool, actor, snapshot_id)
    if row["status"] != "completed" or not row["artifact_key"]:
        raise NotReady(
            f"The snapshot is {row['status']}; download it once its task has completed",
            status_now=row["status"],
        )
    path = store.pdf_path(store_dir, row["artifact_key"])
    try:
        size = path.stat().st_size
    except FileNotFoundError as exc:
        raise ArtifactMissing("The PDF is not in the store; it will be rendered again") from exc
    await audit.record(
        pool, actor.audit, "snapshot.download", "served", row["room_id"], snapshot_id
    )
    return Download(
        path=path,
        etag=f'"{row["pdf_sha256"]}"',
        filename=file_name(row["room_name"], row["created_at"].date().isoformat()),
        size=size,
    )
