"""Piece keys: what a cached piece is the rendering of.

A key is SHA-256 of the canonical JSON of the digest of the piece's content, the options that
change its layout (page size, time zone, locale), what it needs from its neighbour (``Seam``)
and the renderer fingerprint. A chunk's content is its heading and its messages, digested as
pydantic's JSON of the message model (a tenth of the time canonical JSON of the dumped
messages took: the keys of a 1,000-message re-snapshot are on its critical path). The seam's
start position is known only once the piece before is rendered, so the keys of a section's
chained pieces are found in order; a section's first piece starts on a fresh page and its key
is known at once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter
from snapshot_shared.hashing import canonical_json, sha256_hex
from snapshot_shared.messages import PayloadMessage, RenderOptions, SnapshotPayload

from snapshot_renderer.pieces.plan import Piece

PIECE_KEY_VERSION = 2  # 2: chunk content digested from the messages' model JSON
_MESSAGES = TypeAdapter(list[PayloadMessage])
SEAM_DIGITS = 3  # start positions are rounded to 1/1000 CSS px, in the key and in the render


@dataclass(frozen=True)
class Seam:
    """Where a piece starts: ``start_y`` on its first page (CSS px from the page's top), or
    ``None`` for a fresh page; whether its first day continues the piece before."""

    start_y: float | None = None
    continues_day: bool = False

    @classmethod
    def after(cls, piece: Piece, end_y: float | None) -> Seam:
        """The seam of ``piece`` when the piece before it ended at ``end_y``."""
        if piece.opens_section or end_y is None:
            return cls(None, piece.continues_day)
        return cls(round(end_y, SEAM_DIGITS), piece.continues_day)

    def as_json(self) -> dict[str, Any]:
        start = None if self.start_y is None else f"{self.start_y:.{SEAM_DIGITS}f}"
        return {"start_y": start, "continues_day": self.continues_day}


def layout_options(options: RenderOptions) -> dict[str, str]:
    """The options that change a piece's layout (the title is content of the cover only)."""
    return {"page_size": options.page_size, "timezone": options.timezone, "locale": options.locale}


def content_digest(piece: Piece, payload: SnapshotPayload, options: RenderOptions) -> str:
    """SHA-256 of what the piece shows."""
    if piece.kind == "cover":
        return sha256_hex(
            canonical_json(
                {
                    "room": payload.room.model_dump(mode="json"),
                    "title": options.title,
                    "sections": list(payload.sections),
                    "members": [m.model_dump(mode="json") for m in payload.members],
                    "as_of": payload.as_of.isoformat() if payload.as_of else None,
                    "message_count": piece.message_count,
                }
            )
        )
    digest = hashlib.sha256(canonical_json({"heading": piece.heading}))
    digest.update(_MESSAGES.dump_json(list(piece.messages)))
    return digest.hexdigest()


def piece_key(
    piece: Piece, payload: SnapshotPayload, options: RenderOptions, seam: Seam, fingerprint: str
) -> str:
    """The cache key of ``piece`` rendered at ``seam`` by a renderer with ``fingerprint``."""
    return sha256_hex(
        canonical_json(
            {
                "version": PIECE_KEY_VERSION,
                "kind": piece.kind,
                "content": content_digest(piece, payload, options),
                "layout": layout_options(options),
                "seam": seam.as_json(),
                "fingerprint": fingerprint,
            }
        )
    )
