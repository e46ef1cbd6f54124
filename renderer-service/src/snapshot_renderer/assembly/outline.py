"""One outline for the merged document, from the headings every piece reports.

Levels follow the headings (h1 the title, h2 a section, h3 a day), as WeasyPrint builds the
outline of a whole-document render; each entry opens its page at the heading's height.
"""

from __future__ import annotations

from collections.abc import Sequence

import pikepdf
from pikepdf import OutlineItem, PageLocation

from snapshot_renderer.render.pieces import RenderedPiece

PT_PER_PX = 0.75  # CSS px are 1/96 in, PDF units 1/72 in


def build_outline(
    pdf: pikepdf.Pdf, pieces: Sequence[RenderedPiece], first_pages: Sequence[int]
) -> int:
    """Write the outline of ``pdf``; returns the number of entries."""
    count = 0
    with pdf.open_outline() as outline:
        stack: list[tuple[int, list[OutlineItem]]] = [(0, outline.root)]
        for piece, first in zip(pieces, first_pages, strict=True):
            for mark in piece.bookmarks:
                page = first + mark.page
                height = float(pdf.pages[page].mediabox[3])
                top = height - mark.y * PT_PER_PX
                item = OutlineItem(mark.label, page, PageLocation.XYZ, left=0, top=top)
                while stack[-1][0] >= mark.level:
                    stack.pop()
                stack[-1][1].append(item)
                stack.append((mark.level, item.children))
                count += 1
    return count
