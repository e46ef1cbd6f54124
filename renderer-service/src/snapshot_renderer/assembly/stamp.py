"""Page numbers and the running header, stamped after the merge.

The stamp document is rendered by WeasyPrint with snapshot.css's own margin boxes
(``render.pieces.render_stamp``), so the header ("room name", "As of …"; none on page 1) and the
footer ("Room Snapshots", "Page X of Y") look exactly like a whole render's, in any script the
room name is written in. It has page 1, one sample page for each count of digits (2, 10,
100, …) and a page showing the ten digits. Page *i*'s stamp is the sample with as many digits
as *i*, its page number's glyphs swapped for *i*'s in the footer's text run: the text font's
digits share one width and WeasyPrint puts no kerning between them, so nothing else moves (the
pages' pixels are compared with a whole render's in the tests). The total is swapped the same
way, so a stamp document rendered for a total with as many digits will do: it can be rendered
while the pieces are, before the total is known (``documents``). Rendering every page of the
stamp with WeasyPrint instead cost ~5.5 ms a page; this costs one small render and well under
a millisecond a page.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import pikepdf
from pikepdf import Array, Dictionary, Name, Operator, String

from snapshot_renderer.assembly.font_maps import glyph_widths
from snapshot_renderer.assembly.fontpool import FontPool
from snapshot_renderer.assembly.merge import SharedContents, overlay
from snapshot_renderer.errors import RenderFailed
from snapshot_renderer.render.pieces import stamp_samples

STAMP_RESOURCE = "PageStamp"
_TJ = Operator("TJ")


@dataclass
class _Sample:
    """A stamp page: its content around the footer's text run (``head``, ``run``, ``tail``),
    and its resources."""

    number: int
    head: bytes
    run: list[Any]  # the footer's TJ array: glyph strings and kerning numbers
    tail: bytes
    resources: pikepdf.Object
    bbox: pikepdf.Array


def _glyphs(array: Any) -> list[bytes]:
    return [
        bytes(item)[i : i + 2]
        for item in array
        if isinstance(item, String)
        for i in range(0, len(bytes(item)), 2)
    ]


def _widths(font: Any) -> dict[int, float]:
    """Glyph widths of a Type0 font's descendant (its /W array)."""
    widths = glyph_widths(font.DescendantFonts[0].get(Name.W, Array()))
    if widths is None:
        raise RenderFailed("the footer font's widths cannot be read: cannot stamp")
    return {gid: float(width) for gid, width in widths.items()}


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
    whose digits are ``number`` then ``total`` (the total the stamp was rendered for)."""
    operations: list[Any] = [
        (list(i.operands), i.operator) for i in pikepdf.parse_content_stream(page)
    ]
    want = [digits[int(d)] for d in f"{number}{total}"]
    for index, (operands, operator) in enumerate(operations):
        if operator == _TJ and [g for g in _glyphs(operands[0]) if g in digits] == want:
            resources = pdf.copy_foreign(page.obj.get(Name.Resources, Dictionary()))
            bbox = pdf.make_indirect(Array([float(v) for v in page.mediabox]))  # for every page
            head = pikepdf.unparse_content_stream(operations[:index])
            tail = pikepdf.unparse_content_stream(operations[index + 1 :])
            return _Sample(number, head, list(operands[0]), tail, resources, bbox)
    raise RenderFailed(f"no 'Page {number} of {total}' run on the stamp document's page")


def _number(value: Any) -> bytes:
    if isinstance(value, int):
        return str(value).encode()
    return f"{float(value):.4f}".rstrip("0").rstrip(".").encode()


def _content(sample: _Sample, number: int, total: int, digits: list[bytes]) -> bytes:
    """The sample's content with ``number`` and ``total`` in place of its own (the same
    counts of digits): its bytes around the footer's run, and the run written here, glyphs as
    hex strings (a page costs microseconds, not a parse and unparse)."""
    new = iter(digits[int(d)] for d in f"{number}{total}")
    count = len(f"{number}{total}")
    items = []
    for item in sample.run:
        if not isinstance(item, String):
            items.append(_number(item))
            continue
        out = []
        raw = bytes(item)
        for i in range(0, len(raw), 2):
            glyph = raw[i : i + 2]
            if count and glyph in digits:
                glyph, count = next(new), count - 1
            out.append(glyph)
        items.append(b"<" + b"".join(out).hex().encode() + b">")
    return b"%s\n[%s] TJ\n%s" % (sample.head, b" ".join(items), sample.tail)


def stamp(
    pdf: pikepdf.Pdf,
    stamp_pdf: bytes,
    rendered_for: int | None = None,
    fonts: FontPool | None = None,
) -> pikepdf.Pdf:
    """Overlay each page's header and footer onto the pages of ``pdf``; returns the opened stamp
    document (keep it open until ``pdf`` is saved). ``stamp_pdf`` was rendered for a document
    of ``rendered_for`` pages (by default as many as ``pdf`` has), with as many digits. Its
    fonts are shared through ``fonts`` if given."""
    source = pikepdf.open(io.BytesIO(stamp_pdf))
    total = len(pdf.pages)
    rendered_for = total if rendered_for is None else rendered_for
    if len(str(rendered_for)) != len(str(total)):
        raise ValueError(f"a stamp for {rendered_for} pages cannot number {total}")
    numbers = [1, *stamp_samples(total)]
    if len(source.pages) != len(numbers) + 1:
        raise RenderFailed(
            f"the stamp document has {len(source.pages)} pages, not {len(numbers) + 1}"
        )
    digits = _digits(source.pages[-1])
    if fonts is not None:
        fonts.take(source.pages)
    samples = [
        _sample(pdf, source.pages[i], n, rendered_for, digits) for i, n in enumerate(numbers)
    ]
    if fonts is not None:
        for sample in samples:
            fonts.resolve(sample.resources)
    by_length = {len(str(s.number)): s for s in samples[1:]}
    contents = SharedContents(pdf)
    for number, page in enumerate(pdf.pages, start=1):
        sample = samples[0] if number == 1 else by_length[len(str(number))]
        form = pikepdf.Stream(pdf, _content(sample, number, total, digits))
        form.Type, form.Subtype = Name.XObject, Name.Form
        form.BBox, form.Resources = sample.bbox, sample.resources
        overlay(page, form, STAMP_RESOURCE, contents)
    return source
