"""Messages between renderer replicas for a document's pieces (``render.pieces``).

A document job whose pieces are missing sends one ``SectionJob`` per section (and one for the
cover) that has a piece its caches lack: the section's pieces in order from the first missing
one (with where the piece before it ended), which the replica that takes it renders one after the
other (each chained onto the one before), taking every piece from the caches it can. That
replica answers on the sender's reply queue with a ``SectionReply`` per piece (its key and page
count, for progress and the page limit) and one when the section is done or has failed. Both
ends are renderers of one release; the bodies are gzip-compressed JSON.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import fields
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict
from snapshot_shared.messages import (
    PayloadMessage,
    RenderOptions,
    SnapshotPayload,
    encode,
    inflate,
)

from snapshot_renderer.pieces.plan import Piece, PieceKind

GZIP_THRESHOLD = 4096


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PieceSpec(_Wire):
    """A ``plan.Piece`` on the wire."""

    kind: PieceKind
    section: int
    chunk: int | None = None
    messages: list[PayloadMessage] = []
    opens_section: bool = False
    heading: str | None = None
    continues_day: bool = False
    edge: bool = False
    message_count: int = 0

    @classmethod
    def of(cls, piece: Piece) -> PieceSpec:
        return cls(**{f.name: getattr(piece, f.name) for f in fields(Piece)})

    def piece(self) -> Piece:
        return Piece(**{f.name: getattr(self, f.name) for f in fields(Piece)})


class SectionJob(_Wire):
    """Render these pieces in order (chained), taking what the caches hold."""

    schema_version: Literal[1] = 1
    section_id: str  # the reply's correlation: "<document run>.<section number>"
    task_id: UUID
    requested_by: str | None = None
    # The snapshot without its messages (the cover shows the room, members and as-of time;
    # chunk pieces show only their own messages and need none of it but the room's name).
    payload: SnapshotPayload
    options: RenderOptions
    pieces: list[PieceSpec]
    deadline: dt.datetime | None = None
    # Where the piece before the first one ended (``Seam.after``): the sender found the
    # section's first pieces in its caches and sends only the rest, chained onto them.
    after_end_y: float | None = None


class PieceError(_Wire):
    code: str
    message: str
    retryable: bool


class SectionReply(_Wire):
    """One piece of the section is in the caches, or the section is done or has failed."""

    section_id: str
    event: Literal["piece", "done", "failed"]
    index: int | None = None  # the piece's position in the section
    key: str | None = None
    pages: int | None = None
    cache: str | None = None
    keys: list[str] = []  # "done": every piece's key, in order
    error: PieceError | None = None


def encode_section(job: SectionJob) -> tuple[bytes, str | None]:
    return encode(job, gzip_threshold=GZIP_THRESHOLD)


def decode_section(body: bytes, encoding: str | None, max_bytes: int) -> SectionJob:
    """The section job in ``body``; ``ValueError`` if it is not one."""
    return SectionJob.model_validate_json(inflate(body, encoding, max_bytes))


def decode_reply(body: bytes) -> SectionReply:
    return SectionReply.model_validate_json(body)
