"""Merging pieces: a chained piece's first page is overlaid onto the page before it as a form
XObject (its content starts below where the previous piece ended, and it draws nothing above
that: pieces have no margin boxes and no backgrounds), and its other pages are appended.

Only one piece's document is open at a time (and the cover's, whose metadata the assembly
copies last): pikepdf opens documents with qpdf's "immediate copy" (``setImmediateCopyFrom``), so
a copied stream's data is copied into the merged document with it, and qpdf's
``copyForeignObject`` needs the source ``QPDF`` no longer. The seam's form XObject, whose data a
provider of its source gives (``as_form_xobject``), is materialized explicitly all the same.
Keeping all 2,001 pieces of a 100,000-message room open took ~140 MB of the assembling worker.
A render worker reads the pieces from files (``files``), so their bytes (35 MB for those 2,001
pieces) are not held next to the merged document either: each is read while its pages are
copied.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pikepdf
from pikepdf import Array, Dictionary, Name

from snapshot_renderer.assembly.fontpool import FontPool
from snapshot_renderer.render.pieces import RenderedPiece


@dataclass
class Merged:
    """The merged document, where each piece's first page landed, the cover's document
    (open: close it once its metadata is copied), and the pool of the pieces' fonts if they
    are shared."""

    pdf: pikepdf.Pdf
    first_pages: list[int]
    cover: pikepdf.Pdf
    fonts: FontPool | None = None


SEAM_RESOURCE = "PieceSeam{}"  # numbered by piece: one page may take two seams


class SharedContents:
    """The content streams overlays add around pages' contents (``q``, ``Q q /Name Do Q``), one
    indirect stream of each in the document, shared by the pages that draw it: a stream a page
    and an overlay cost ~14,000 objects for 100,000 messages."""

    def __init__(self, pdf: pikepdf.Pdf) -> None:
        self._pdf = pdf
        self._streams: dict[bytes, pikepdf.Stream] = {}

    def __call__(self, data: bytes) -> pikepdf.Stream:
        stream = self._streams.get(data)
        if stream is None:
            stream = self._streams[data] = self._pdf.make_stream(data)
        return stream


def overlay(page: pikepdf.Page, form: pikepdf.Object, name: str, contents: SharedContents) -> None:
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
    page.contents_add(contents(b"q\n"), prepend=True)
    page.contents_add(contents(f"Q\nq /{name} Do Q\n".encode("ascii")))


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


def merge(
    pieces: Sequence[RenderedPiece],
    files: Sequence[Path] | None = None,
    share_fonts: bool = False,
) -> Merged:
    """The pieces as one document, in order; their PDFs read from ``files`` (one a piece) if
    given, else from ``piece.pdf``; with ``share_fonts``, their fonts go through a
    ``FontPool`` (``Merged.fonts``: its ``finish`` is the caller's)."""
    if not pieces:
        raise ValueError("nothing to merge")
    if files is not None and len(files) != len(pieces):
        raise ValueError(f"{len(files)} files for {len(pieces)} pieces")

    def opened(index: int) -> pikepdf.Pdf:
        if files is not None:
            return pikepdf.open(files[index])
        return pikepdf.open(io.BytesIO(pieces[index].pdf))

    out = pikepdf.new()
    fonts = FontPool(out) if share_fonts else None
    contents = SharedContents(out)
    boxes: dict[bytes, pikepdf.Object] = {}
    first_pages: list[int] = []
    count = 0  # pages in ``out`` (counted here: ``len(out.pages)`` is not free)
    seams: dict[int, list[tuple[pikepdf.Object, str]]] = {}  # page -> forms to overlay on it
    cover = opened(0)
    for index, piece in enumerate(pieces):
        source = cover if index == 0 else opened(index)
        pages = source.pages
        if fonts is not None:
            fonts.take(pages)
        if piece.chained and count:
            first_pages.append(count - 1)
            form = out.copy_foreign(pages[0].as_form_xobject())
            form.write(form.read_bytes())  # its own data, whatever the source's copy mode
            name = SEAM_RESOURCE.format(len(first_pages))
            seams.setdefault(count - 1, []).append((form, name))
            out.pages.extend(pages[1:])
            count += len(pages) - 1
        else:
            first_pages.append(count)
            out.pages.extend(pages)
            count += len(pages)
        del source, pages  # a piece's document goes once its pages are copied (not the cover's)
    # One walk of the pages at the end: indexing ``out.pages`` walks them all, each time.
    for number, page in enumerate(out.pages):
        if fonts is not None:
            fonts.resolve(page.obj.get(Name.Resources))
        for form, name in seams.get(number, ()):
            if fonts is not None:
                fonts.resolve(form.get(Name.Resources))
            overlay(page, form, name, contents)
        _share_boxes(out, page, boxes)
    return Merged(out, first_pages, cover, fonts)


_BOXES = (Name.MediaBox, Name.CropBox, Name.BleedBox, Name.TrimBox, Name.ArtBox)


def _share_boxes(pdf: pikepdf.Pdf, page: pikepdf.Page, shared: dict[bytes, pikepdf.Object]) -> None:
    """Point the boxes of ``page`` at one indirect array per distinct value: every page of
    every piece has the same three (media, bleed and trim box), 15 objects a page (~14 MB for
    100,000 messages) where three are enough."""
    obj = page.obj
    for key in _BOXES:
        box = obj.get(key)
        if isinstance(box, Array) and not box.is_indirect:
            value = box.unparse()
            if value not in shared:
                shared[value] = pdf.make_indirect(box)
            obj[key] = shared[value]
