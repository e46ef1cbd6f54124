"""Rendering one piece of a snapshot, and the stamp document, in a render worker process.

A piece is rendered with the snapshot's own template parts and CSS, plus ``pieces.css`` (no
margin boxes: assembly stamps them). A chained piece starts at ``Seam.start_y`` on its first
page (that page's top margin) and every piece reports where its content ends on its last page
(the ``#end`` marker's position in ``Page.anchors``), so the next one can start there. Not
used by the job path yet (issue 11, first landing).
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from typing import Any

from snapshot_shared.messages import RenderOptions, SnapshotPayload
from weasyprint import CSS, HTML

from snapshot_renderer.errors import RendererError, RenderFailed
from snapshot_renderer.pieces.keys import Seam
from snapshot_renderer.pieces.plan import Piece
from snapshot_renderer.render.resources import assets_dir
from snapshot_renderer.render.view import build_context, group_by_day, w3c_utc
from snapshot_renderer.render.worker import WorkerState, _get_state

TEMPLATE = "_piece.html.j2"
PIECES_SHEET = "pieces.css"
STAMP_SHEET = "stamp.css"
# A piece that ends closer than this to the page's bottom edge (the 18 mm bottom margin of
# snapshot.css plus 10 mm, about two lines) leaves no room worth chaining into: the next piece
# starts on a fresh page, as the whole document would break there too.
MIN_ROOM_PX = (18 + 10) * 96 / 25.4


@dataclass(frozen=True)
class Bookmark:
    """A heading of a piece: its level (h1 = 1), text, page in the piece, and y in CSS px."""

    level: int
    label: str
    page: int
    y: float


@dataclass(frozen=True)
class RenderedPiece:
    """A rendered piece and what its neighbours and assembly need to know of it."""

    pdf: bytes
    pages: int
    chained: bool  # its first page continues the page before (overlaid at assembly)
    end_y: float | None  # where the next piece may start on the last page; None: a fresh page
    page_height: float  # CSS px
    bookmarks: tuple[Bookmark, ...]


_sheets: dict[str, CSS] = {}


def _sheet(state: WorkerState, name: str) -> CSS:
    if name not in _sheets:
        _sheets[name] = CSS(
            filename=str(assets_dir() / name),
            url_fetcher=state.fetcher,
            font_config=state.font_config,
        )
    return _sheets[name]


def _context(payload: SnapshotPayload, options: RenderOptions, piece: Piece) -> dict[str, Any]:
    if piece.kind == "cover":
        context = build_context(payload.model_copy(update={"messages": []}), options)
        context.update(piece_kind="cover", message_count=piece.message_count)
        return context
    # A chunk's document shows nothing but its messages: its title and dates are its own, so
    # that one key's bytes do not depend on which snapshot rendered it first.
    last = piece.messages[-1].created_at
    tz = zoneinfo.ZoneInfo(options.timezone)
    days = group_by_day(list(piece.messages), tz)
    if piece.continues_day and not piece.opens_section:
        days[0].heading = ""
    return {
        "piece_kind": "chunk",
        "lang": options.locale.replace("_", "-"),
        "title": "Room snapshot piece",
        "created_w3c": w3c_utc(last),
        "days": days,
        "section_heading": piece.heading,
    }


def _render(html_text: str, state: WorkerState, sheets: list[CSS]) -> Any:
    try:
        return HTML(string=html_text, base_url=state.base_url, url_fetcher=state.fetcher).render(
            font_config=state.font_config, stylesheets=sheets
        )
    except RendererError:
        raise
    except Exception as exc:  # anything WeasyPrint raises ends as render_error
        raise RenderFailed(f"{type(exc).__name__}: {exc}"[:500]) from None


def render_piece(
    payload: SnapshotPayload, options: RenderOptions, piece: Piece, seam: Seam
) -> RenderedPiece:
    """Render ``piece`` of ``payload`` starting at ``seam``."""
    state = _get_state()
    context = _context(payload, options, piece)
    context["seam_spacer"] = seam.start_y is not None
    html_text = state.env.get_template(TEMPLATE).render(context)
    sheets = [*state.stylesheets[options.page_size], _sheet(state, PIECES_SHEET)]
    if seam.start_y is not None:
        sheets.append(
            CSS(
                string=f"@page :first {{ margin-top: 0; }} "
                f".seam-spacer {{ height: {seam.start_y:.3f}px; }}",
                font_config=state.font_config,
            )
        )
    document = _render(html_text, state, sheets)
    last = document.pages[-1]
    end = last.anchors.get("end")
    end_y = None if end is None or end[1] > last.height - MIN_ROOM_PX else float(end[1])
    bookmarks = tuple(
        Bookmark(level=level, label=label, page=number, y=float(target[1]))
        for number, page in enumerate(document.pages)
        for level, label, target, _state in page.bookmarks
    )
    return RenderedPiece(
        pdf=document.write_pdf(),
        pages=len(document.pages),
        chained=seam.start_y is not None,
        end_y=end_y,
        page_height=float(last.height),
        bookmarks=bookmarks,
    )


def stamp_samples(pages: int) -> list[int]:
    """The page numbers the stamp document shows after page 1: one of each count of digits a
    document of ``pages`` pages needs (2, 10, 100, ...)."""
    return [2, *(10**n for n in range(1, len(str(max(pages, 1)))))]


def render_stamp(payload: SnapshotPayload, options: RenderOptions, pages: int) -> bytes:
    """The stamp document of a ``pages``-page document: page 1's header and footer, one sample
    page for each count of digits (``stamp_samples``), and a page of the ten digits
    (``assembly.stamp`` makes every page's stamp of these)."""
    state = _get_state()
    context = build_context(payload.model_copy(update={"messages": []}), options)
    context.update(piece_kind="stamp", pages=max(pages, 1), samples=stamp_samples(pages))
    html_text = state.env.get_template(TEMPLATE).render(context)
    sheets = [*state.stylesheets[options.page_size], _sheet(state, STAMP_SHEET)]
    return bytes(_render(html_text, state, sheets).write_pdf())
