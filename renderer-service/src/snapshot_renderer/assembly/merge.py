"""Merging pieces: a chained piece's first page is overlaid onto the page before it as a form
XObject (its content starts below where the previous piece ended, and it draws nothing above
that: pieces have no margin boxes and no backgrounds), and its other pages are appended.

Only one piece's document is open at a time (and the cover's, whose metadata the assembly
copies last): pikepdf opens documents with qpdf's "immediate copy" (``setImmediateCopyFrom``), so
a copied stream's data is copied into the merged document with it, and qpdf's
``copyForeignObject`` needs the source ``QPDF`` no longer. The seam's form XObject, whose data a
provider of its source gives (``as_form_xobject``), is materialized explicitly all the same.
Keeping all 2,001 pieces of a 100,000-message room open took ~140 MB of the assembling worker.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import pikepdf
from pikepdf import Dictionary, Name

from snapshot_renderer.render.pieces import RenderedPiece


@dataclass
class Merged:
    """The merged document, where each piece's first page landed, and the cover's document
    (open: close it once its metadata is copied)."""

    pdf: pikepdf.Pdf
    first_pages: list[int]
    cover: pikepdf.Pdf


SEAM_RESOURCE = "PieceSeam{}"  # numbered by piece: one page may take two seams


def overlay(page: pikepdf.Page, form: pikepdf.Object, name: str) -> None:
    """Draw the form XObject ``form`` over ``page`` at the same coordinates, as resource
    ``/name``. Not ``Page.add_overlay``: it names the resource at random, which would make two
    assemblies of the same pieces differ."""
    resources = _own_resources(page)
    if Name.XObject not in resources:
        resources[Name.XObject] = Dictionary()
    xobjects = resources[Name.XObject]
    if Name("/" + name) in xobjects:
        raise ValueError(f"resource /{name} already on the page")
    xobjects[Name("/" + name)] = form
    page.contents_add(b"q\n", prepend=True)
    page.contents_add(f"Q\nq /{name} Do Q\n".encode("ascii"))


def _own_resources(page: pikepdf.Page) -> Dictionary:
    """The page's /Resources, copied (shallowly, with its /XObject) if other pages share them:
    WeasyPrint gives all pages of a document one dictionary, and an overlay is one page's."""
    resources = page.obj.get(Name.Resources)
    copy = (
        Dictionary({k: v for k, v in resources.items()}) if resources is not None else Dictionary()
    )
    xobjects = copy.get(Name.XObject)
    if isinstance(xobjects, Dictionary):
        copy[Name.XObject] = Dictionary({k: v for k, v in xobjects.items()})
    page.obj.Resources = copy
    return copy


def page_count(pieces: Sequence[RenderedPiece]) -> int:
    """The pages of the merged document: every piece's, less one per overlaid seam."""
    total = 0
    for piece in pieces:
        total += piece.pages - (1 if piece.chained and total else 0)
    return total


def merge(pieces: Sequence[RenderedPiece]) -> Merged:
    """The pieces as one document, in order."""
    if not pieces:
        raise ValueError("nothing to merge")
    out = pikepdf.new()
    first_pages: list[int] = []
    cover = pikepdf.open(io.BytesIO(pieces[0].pdf))
    for index, piece in enumerate(pieces):
        source = cover if index == 0 else pikepdf.open(io.BytesIO(piece.pdf))
        if piece.chained and len(out.pages):
            first_pages.append(len(out.pages) - 1)
            form = out.copy_foreign(source.pages[0].as_form_xobject())
            form.write(form.read_bytes())  # its own data, whatever the source's copy mode
            overlay(out.pages[-1], form, SEAM_RESOURCE.format(len(first_pages)))
            out.pages.extend(source.pages[1:])
        else:
            first_pages.append(len(out.pages))
            out.pages.extend(source.pages)
        del source  # a piece's document goes once its pages are copied (the cover's stays)
    return Merged(out, first_pages, cover)
