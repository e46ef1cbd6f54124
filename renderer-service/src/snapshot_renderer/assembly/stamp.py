"""Page numbers and the running header, stamped after the merge.

The stamp document is rendered by WeasyPrint with snapshot.css's own margin boxes
(``render.pieces.render_stamp``): as many pages as the merged document, empty but for the header
("room name", "As of …"; none on the first page) and the footer ("Room Snapshots", "Page X of
Y"). Each of its pages is overlaid onto the merged page of the same number, so the footers
look exactly like a whole-document render's, in any script the room name is written in.
"""

from __future__ import annotations

import io

import pikepdf

from snapshot_renderer.assembly.merge import overlay
from snapshot_renderer.errors import RenderFailed

STAMP_RESOURCE = "PageStamp"


def stamp(pdf: pikepdf.Pdf, stamp_pdf: bytes) -> pikepdf.Pdf:
    """Overlay page *i* of ``stamp_pdf`` onto page *i* of ``pdf``; returns the opened stamp
    document (keep it open until ``pdf`` is saved)."""
    source = pikepdf.open(io.BytesIO(stamp_pdf))
    if len(source.pages) != len(pdf.pages):
        raise RenderFailed(
            f"the stamp has {len(source.pages)} pages, the document {len(pdf.pages)}"
        )
    for page, stamp_page in zip(pdf.pages, source.pages, strict=True):
        overlay(page, pdf.copy_foreign(stamp_page.as_form_xobject()), STAMP_RESOURCE)
    return source
