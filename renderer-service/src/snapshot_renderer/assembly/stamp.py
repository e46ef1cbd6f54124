"""Page numbers and the running header, stamped after the merge.

The stamp document is rendered by WeasyPrint with snapshot.css's own margin boxes
(``render.pieces.render_stamp``), so the header ("room name", "As of …"; none on page 1) and the
footer ("Room Snapshots", "Page X of Y") look exactly like a whole render's, in any script the
room name is written in. It has page 1, one sample page for each count of digits (2, 10,
100, …) and a page showing the ten digits. Page *i*'s stamp is the sample with as many digits
as *i*, its page number's glyphs swapped for *i*'s in the footer's text run: the text font's
digits share one width and WeasyPrint puts no kerning between them, so nothing else moves (the
pages' pixels are compared with a whole render's in the tests). Rendering every page of the
stamp with WeasyPrint instead cost ~5.5 ms a page; this costs one small render and well under
a millisecond a page.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import pikepdf
from pikepdf import Array, Dictionary, Name, Operator, String

from snapshot_renderer.assembly.merge import SharedContents, overlay
from snapshot_renderer.errors import RenderFailed
from snapshot_renderer.render.pieces import stamp_samples

STAMP_RESOURCE = "PageStamp"
_TJ = Operator("TJ")


@dataclass
class _Sample:
    """A stamp page: its content, resources, and where its page number's glyphs are."""

    number: int
    operations: list[Any]  # (operands, operator) pairs
    resources: pikepdf.Object
    bbox: pikepdf.Array
    footer: int  # index of the footer's TJ in ``operations``


def _glyphs(array: Any) -> list[bytes]:
    return [
        bytes(item)[i : i + 2]
        for item in array
        if isinstance(item, String)
        for i in range(0, len(bytes(item)), 2)
    ]


def _widths(font: Any) -> dict[int, float]:
    """Glyph widths of a Type0 font's descendant (its /W array: ``c [w ...]`` or ``c1 c2 w``)."""
    descendant = font.DescendantFonts[0]
    items, widths = list(descendant.get(Name.W, Array())), {}
    i = 0
    while i < len(items):
        first = int(items[i])
        if isinstance(items[i + 1], Array):
            for n, width in enumerate(items[i + 1]):
                widths[first + n] = float(width)
            i += 2
        else:
            for gid in range(first, int(items[i + 1]) + 1):
                widths[gid] = float(items[i + 2])
            i += 3
    return widths


def _digits(page: pikepdf.Page) -> list[bytes]:
    """The glyph ids of 0-9, from the page that shows them (Identity-H: two bytes a glyph),
    after checking that they share one width, which swapping them relies on."""
    font: Any = None
    for instruction in pikepdf.parse_content_stream(page):
        operator, operands = instruction.operator, instruction.operands
        if operator == Operator("Tf"):
            font = page.obj.Resources.Font[Name(str(operands[0]))]
        if operator == _TJ and font is not None and len(glyphs := _glyphs(operands[0])) == 10:
            widths = _widths(font)
            default = float(font.DescendantFonts[0].get(Name.DW, 1000))
            if len({widths.get(int.from_bytes(g, "big"), default) for g in glyphs}) != 1:
                raise RenderFailed("the footer font's digits differ in width: cannot stamp")
            return glyphs
    raise RenderFailed("the stamp document has no page of digits")


def _sample(
    pdf: pikepdf.Pdf, page: pikepdf.Page, number: int, total: int, digits: list[bytes]
) -> _Sample:
    """``page`` of the stamp document, copied into ``pdf``, with its footer run found: the run
    whose digits are ``number`` then ``total``."""
    operations: list[Any] = [
        (list(i.operands), i.operator) for i in pikepdf.parse_content_stream(page)
    ]
    want = [digits[int(d)] for d in f"{number}{total}"]
    for index, (operands, operator) in enumerate(operations):
        if operator == _TJ and [g for g in _glyphs(operands[0]) if g in digits] == want:
            resources = pdf.copy_foreign(page.obj.get(Name.Resources, Dictionary()))
            bbox = pdf.make_indirect(Array([float(v) for v in page.mediabox]))  # for every page
            return _Sample(number, operations, resources, bbox, index)
    raise RenderFailed(f"no 'Page {number} of {total}' run on the stamp document's page")


def _numbered(sample: _Sample, number: int, digits: list[bytes]) -> bytes:
    """The sample's content with ``number`` in place of its own page number."""
    new = iter(digits[int(d)] for d in str(number))
    count = len(str(sample.number))
    array = []
    for item in sample.operations[sample.footer][0][0]:
        if not isinstance(item, String):
            array.append(item)
            continue
        out = b""
        for i in range(0, len(bytes(item)), 2):
            glyph = bytes(item)[i : i + 2]
            if glyph in digits and count:
                glyph, count = next(new), count - 1
            out += glyph
        array.append(String(out))
    operations = list(sample.operations)
    operations[sample.footer] = ([Array(array)], _TJ)
    return pikepdf.unparse_content_stream(operations)


def stamp(pdf: pikepdf.Pdf, stamp_pdf: bytes) -> pikepdf.Pdf:
    """Overlay each page's header and footer onto the pages of ``pdf``; returns the opened stamp
    document (keep it open until ``pdf`` is saved)."""
    source = pikepdf.open(io.BytesIO(stamp_pdf))
    total = len(pdf.pages)
    numbers = [1, *stamp_samples(total)]
    if len(source.pages) != len(numbers) + 1:
        raise RenderFailed(
            f"the stamp document has {len(source.pages)} pages, not {len(numbers) + 1}"
        )
    digits = _digits(source.pages[-1])
    samples = [_sample(pdf, source.pages[i], n, total, digits) for i, n in enumerate(numbers)]
    by_length = {len(str(s.number)): s for s in samples[1:]}
    contents = SharedContents(pdf)
    for number, page in enumerate(pdf.pages, start=1):
        sample = samples[0] if number == 1 else by_length[len(str(number))]
        content = (
            pikepdf.unparse_content_stream(sample.operations)
            if number == sample.number
            else _numbered(sample, number, digits)
        )
        form = pikepdf.Stream(pdf, content)
        form.Type, form.Subtype = Name.XObject, Name.Form
        form.BBox, form.Resources = sample.bbox, sample.resources
        overlay(page, form, STAMP_RESOURCE, contents)
    return source
