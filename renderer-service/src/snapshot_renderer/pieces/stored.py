"""A rendered piece as a cache entry: its PDF, plus what its neighbour and assembly need of it
(where it ends, whether it is chained, its bookmarks) as the entry's ``piece`` facts, which the
disk store keeps in the entry's metadata file."""

from __future__ import annotations

import hashlib
from typing import Any

from snapshot_renderer.cache.memory import CachedPdf
from snapshot_renderer.render.pieces import Bookmark, RenderedPiece


class NotAPiece(ValueError):
    """A cache entry under a piece key without valid piece facts."""


def to_entry(piece: RenderedPiece) -> CachedPdf:
    facts: dict[str, Any] = {
        "chained": piece.chained,
        "end_y": piece.end_y,
        "page_height": piece.page_height,
        "bookmarks": [[b.level, b.label, b.page, b.y] for b in piece.bookmarks],
    }
    digest = hashlib.sha256(piece.pdf).hexdigest()
    return CachedPdf(piece.pdf, piece.pages, digest, piece=facts)


def from_entry(entry: CachedPdf) -> RenderedPiece:
    facts = entry.piece
    if facts is None:
        raise NotAPiece("the entry has no piece facts")
    try:
        end_y = facts["end_y"]
        return RenderedPiece(
            pdf=entry.pdf,
            pages=entry.pages,
            chained=bool(facts["chained"]),
            end_y=None if end_y is None else float(end_y),
            page_height=float(facts["page_height"]),
            bookmarks=tuple(
                Bookmark(int(level), str(label), int(page), float(y))
                for level, label, page, y in facts["bookmarks"]
            ),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise NotAPiece(f"invalid piece facts: {exc}") from exc
