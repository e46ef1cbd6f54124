"""One outline for the merged document, from the headings every piece reports.

Levels follow the headings (h1 the title, h2 a section, h3 a day), as WeasyPrint builds the
outline of a whole-document render; each entry opens its page at the heading's height.
"""

from __future__ import annotations

from collections.abc import Sequence

import pikepdf
from pikepdf import Array, Name, OutlineItem

from snapshot_renderer.render.pieces import RenderedPiece

PT_PER_PX = 0.75  # CSS px are 1/96 in, PDF units 1/72 in


def build_outline(
    pdf: pikepdf.Pdf, pieces: Sequence[RenderedPiece], first_pages: Sequence[int]
) -> int:
    """Write the outline of ``pdf``; returns the number of entries."""
    count = 0
    pages = list(pdf.pages)  # one walk: indexing ``pdf.pages`` walks them all, each time
    with pdf.open_outline() as outline:
        stack: list[tuple[int, list[OutlineItem]]] = [(0, outline.root)]
        for piece, first in zip(pieces, first_pages, strict=True):
            for mark in piece.bookmarks:
                page = pages[first + mark.page]
                top = float(page.mediabox[3]) - mark.y * PT_PER_PX
                # what pikepdf.make_page_destination makes of (page, XYZ, left=0, top=top)
                item = OutlineItem(mark.label, Array([page.obj, Name.XYZ, 0, top, 0]))
                while stack[-1][0] >= mark.level:
                    stack.pop()
                stack[-1][1].append(item)
                stack.append((mark.level, item.children))
                count += 1
    return count
