"""The pieces' entry points in a render worker process: one piece, or an assembly.

Like ``worker.render_job`` they run the test-only fault hooks first and report their time and
the fetches the worker refused, so the pool's budgets (time per call, memory per worker) hold
per piece and per assembly, not per document.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from snapshot_shared.messages import RenderOptions, SnapshotPayload

from snapshot_renderer.assembly.document import assemble_into
from snapshot_renderer.assembly.merge import page_count
from snapshot_renderer.errors import TooManyPages
from snapshot_renderer.pieces.keys import Seam
from snapshot_renderer.pieces.plan import Piece
from snapshot_renderer.render import worker
from snapshot_renderer.render.faults import inject
from snapshot_renderer.render.pieces import RenderedPiece, render_piece, render_stamp


@dataclass(frozen=True)
class PieceResult:
    """A rendered piece and how long it took, in which process."""

    piece: RenderedPiece
    seconds: float
    pid: int
    refused_fetches: int


@dataclass(frozen=True)
class Stamp:
    """A stamp document and the page count it was rendered for (``render_stamp``)."""

    pdf: bytes
    pages: int
    seconds: float = 0.0


@dataclass(frozen=True)
class AssemblyResult:
    """The assembled document and how long the stamp and the assembly took."""

    pdf: bytes
    pages: int
    seconds: float
    pid: int


@dataclass(frozen=True)
class AssembledFile:
    """What ``assembly_job`` answers: the document is in the file the pool named."""

    pages: int
    seconds: float
    pid: int


def piece_job(
    payload: SnapshotPayload, options: RenderOptions, piece: Piece, seam: Seam
) -> PieceResult:
    """Render one piece (``render.pieces.render_piece``) within the worker's hooks."""
    state = worker._get_state()
    inject(worker._faults, {"room": {"name": payload.room.name}})
    refused_before = state.fetcher.refused
    started = time.perf_counter()
    rendered = render_piece(payload, options, piece, seam)
    return PieceResult(
        rendered, time.perf_counter() - started, os.getpid(), state.fetcher.refused - refused_before
    )


def stamp_total(pages: int) -> int:
    """The total a stamp document is rendered for: the least one with as many digits as
    ``pages`` (assembly swaps the digits), so that the stamp, and with it the document's
    bytes, do not depend on whether it was rendered before the page count was known."""
    return int(10 ** (len(str(max(pages, 1))) - 1))


def stamp_job(payload: SnapshotPayload, options: RenderOptions, pages: int) -> Stamp:
    """The stamp document of a document of ``payload`` with as many digits of pages as
    ``pages`` (rendered ahead of the assembly, while the pieces are, or by the assembly)."""
    started = time.perf_counter()
    total = stamp_total(pages)
    return Stamp(render_stamp(payload, options, total), total, time.perf_counter() - started)


def assembly_job(
    pieces: Sequence[RenderedPiece],
    payload: SnapshotPayload,
    options: RenderOptions,
    content_hash: str,
    max_pages: int,
    path: str,
    files: Sequence[str] | None = None,
    stamp: Stamp | None = None,
) -> AssembledFile:
    """Stamp and assemble ``pieces`` (the cover first) into the document of ``content_hash``,
    written to ``path`` (the pool reads it: the PDF's bytes are not pickled back); the pieces'
    PDFs read from ``files`` if given (then ``piece.pdf`` is empty: not pickled either); with
    ``stamp`` if it was rendered for a page count with as many digits."""
    started = time.perf_counter()
    pages = page_count(pieces)
    if pages > max_pages:
        raise TooManyPages(f"the snapshot would have {pages} pages; the limit is {max_pages}")
    if stamp is None or stamp.pages != stamp_total(pages):
        stamp = stamp_job(payload, options, pages)
    paths = None if files is None else [Path(f) for f in files]
    written = assemble_into(
        Path(path), pieces, stamp.pdf, content_hash, paths, stamp_total=stamp.pages
    )
    return AssembledFile(written.pages, time.perf_counter() - started, os.getpid())
