"""Assembly: pieces in, one deterministic PDF out.

Merge the pieces at their seams, give their font subsets distinct tags (one copy of identical
programs), stamp page numbers and the running header, write one outline, copy the cover's
document information (title, creator, producer, dates from the as-of time; never the wall
clock), set the file identifier to the snapshot's content hash (``snapshot_shared.pdf_identity``)
and save with a deterministic second identifier and no timestamps: the same pieces give the
same bytes in any process.

``assemble_into`` reads the pieces from files and writes the PDF to a file (or any binary
stream): a render worker reads and writes where the pool put the pieces and reads the PDF, so
the worker never holds the pieces' bytes (35 MB for 100,000 short messages) nor the document's
(24 MiB) next to the merged document's objects, and none of them is pickled.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pikepdf
from pikepdf import Array, Name, String
from snapshot_shared.pdf_identity import identifier

from snapshot_renderer.assembly.fontpool import PoolFailed
from snapshot_renderer.assembly.fonts import unify
from snapshot_renderer.assembly.merge import merge
from snapshot_renderer.assembly.outline import build_outline
from snapshot_renderer.assembly.stamp import stamp
from snapshot_renderer.render.pieces import RenderedPiece

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Assembled:
    """The assembled PDF and a few numbers about it."""

    pdf: bytes
    pages: int
    outline_entries: int
    font_programs: int


@dataclass(frozen=True)
class Written:
    """A few numbers about the PDF ``assemble_into`` wrote."""

    pages: int
    outline_entries: int
    font_programs: int


def assemble(
    pieces: Sequence[RenderedPiece],
    stamp_pdf: bytes,
    content_hash: str,
    stamp_total: int | None = None,
) -> Assembled:
    """One PDF of ``pieces`` (the cover first), stamped with ``stamp_pdf`` (rendered for
    ``stamp_total`` pages, by default ``merge.page_count(pieces)``: a total with as many
    digits will do), identified by ``content_hash``."""
    buffer = io.BytesIO()
    written = assemble_into(buffer, pieces, stamp_pdf, content_hash, stamp_total=stamp_total)
    return Assembled(
        buffer.getvalue(), written.pages, written.outline_entries, written.font_programs
    )


def assemble_into(
    target: Path | BinaryIO,
    pieces: Sequence[RenderedPiece],
    stamp_pdf: bytes,
    content_hash: str,
    files: Sequence[Path] | None = None,
    stamp_total: int | None = None,
) -> Written:
    """``assemble``, the PDF written to ``target`` (a path or a binary stream); the pieces'
    PDFs read from ``files`` if given (``merge.merge``)."""
    if not pieces:
        raise ValueError("nothing to assemble")
    try:
        return _assemble_into(target, pieces, stamp_pdf, content_hash, files, stamp_total, True)
    except PoolFailed as exc:
        log.warning("assembling without shared font dictionaries: %s", exc)
        return _assemble_into(target, pieces, stamp_pdf, content_hash, files, stamp_total, False)


def _assemble_into(
    target: Path | BinaryIO,
    pieces: Sequence[RenderedPiece],
    stamp_pdf: bytes,
    content_hash: str,
    files: Sequence[Path] | None,
    stamp_total: int | None,
    pooled: bool,
) -> Written:
    merged = merge(pieces, files, share_fonts=pooled)
    out = merged.pdf
    stamp_source = stamp(out, stamp_pdf, stamp_total, merged.fonts)
    if merged.fonts is not None:
        merged.fonts.finish()
    programs = unify(out)
    entries = build_outline(out, pieces, merged.first_pages)
    cover = merged.cover
    if Name.Info in cover.trailer:
        out.trailer.Info = out.copy_foreign(cover.trailer.Info)
    if Name.Lang in cover.Root:
        out.Root.Lang = cover.Root.Lang
    ident = identifier(content_hash)
    out.trailer.ID = Array([String(ident), String(ident)])
    out.save(
        target,
        deterministic_id=True,  # the second /ID element from the content; the first is kept
        object_stream_mode=pikepdf.ObjectStreamMode.generate,
        compress_streams=True,
    )
    pages = len(out.pages)
    for source in (cover, stamp_source):
        source.close()
    out.close()
    return Written(pages, entries, programs)
