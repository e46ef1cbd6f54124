"""Merging pieces: a chained piece's first page is overlaid onto the page before it as a form
XObject (its content starts below where the previous piece ended, and it draws nothing above
that: pieces have no margin boxes and no backgrounds), and its other pages are appended."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field

import pikepdf
from pikepdf import Dictionary, Name

from snapshot_renderer.render.pieces import RenderedPiece


@dataclass
class Merged:
    """The merged document, where each piece's first page landed, and the source documents
    (qpdf copies stream data from them lazily: they stay open until the merged one is saved)."""

    pdf: pikepdf.Pdf
    first_pages: list[int]
    sources: list[pikepdf.Pdf] = field(default_factory=list)


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
    out = pikepdf.new()
    merged = Merged(pdf=out, first_pages=[])
    for piece in pieces:
        source = pikepdf.open(io.BytesIO(piece.pdf))
        merged.sources.append(source)
        if piece.chained and len(out.pages):
            merged.first_pages.append(len(out.pages) - 1)
            form = out.copy_foreign(source.pages[0].as_form_xobject())
            overlay(out.pages[-1], form, SEAM_RESOURCE.format(len(merged.first_pages)))
            out.pages.extend(source.pages[1:])
        else:
            merged.first_pages.append(len(out.pages))
            out.pages.extend(source.pages)
    return merged
