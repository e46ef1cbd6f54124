"""Assembly: pieces in, one deterministic PDF out.

Merge the pieces at their seams, give their font subsets distinct tags (one copy of identical
programs), stamp page numbers and the running header, write one outline, copy the cover's
document information (title, creator, producer, dates from the as-of time; never the wall
clock), set the file identifier to the snapshot's content hash (``snapshot_shared.pdf_identity``)
and save with a deterministic second identifier and no timestamps: the same pieces give the
same bytes in any process.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import pikepdf
from pikepdf import Array, Name, String
from snapshot_shared.pdf_identity import identifier

from snapshot_renderer.assembly.fonts import unify
from snapshot_renderer.assembly.merge import merge
from snapshot_renderer.assembly.outline import build_outline
from snapshot_renderer.assembly.stamp import stamp
from snapshot_renderer.render.pieces import RenderedPiece


@dataclass(frozen=True)
class Assembled:
    """The assembled PDF and a few numbers about it."""

    pdf: bytes
    pages: int
    outline_entries: int
    font_programs: int


def assemble(pieces: Sequence[RenderedPiece], stamp_pdf: bytes, content_hash: str) -> Assembled:
    """One PDF of ``pieces`` (the cover first), stamped with ``stamp_pdf`` (as many pages as
    ``merge.page_count(pieces)``), identified by ``content_hash``."""
    if not pieces:
        raise ValueError("nothing to assemble")
    merged = merge(pieces)
    out = merged.pdf
    stamp_source = stamp(out, stamp_pdf)
    programs = unify(out)
    entries = build_outline(out, pieces, merged.first_pages)
    cover = merged.cover
    if Name.Info in cover.trailer:
        out.trailer.Info = out.copy_foreign(cover.trailer.Info)
    if Name.Lang in cover.Root:
        out.Root.Lang = cover.Root.Lang
    ident = identifier(content_hash)
    out.trailer.ID = Array([String(ident), String(ident)])
    buffer = io.BytesIO()
    out.save(
        buffer,
        deterministic_id=True,  # the second /ID element from the content; the first is kept
        object_stream_mode=pikepdf.ObjectStreamMode.generate,
        compress_streams=True,
    )
    pages = len(out.pages)
    for source in (cover, stamp_source):
        source.close()
    out.close()
    return Assembled(buffer.getvalue(), pages, entries, programs)
