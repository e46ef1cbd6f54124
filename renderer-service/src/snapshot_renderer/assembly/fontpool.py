"""One font dictionary per font in a merged document, made while the pieces are copied.

Every piece embeds a Type0 font of its own for each font it draws: its own widths (``/W``),
ToUnicode map, descriptor and subset program. Copied into the merged document, the 4,003 font
dictionaries of a 100,000-message room (2,001 pieces) held ~80 MB of the assembling worker:
qpdf keeps each number of a ``/W`` array and each entry of a dictionary as an object of its
own. Yet a font's glyph ids are the same in every piece (WeasyPrint keeps them when it subsets,
``originals``), so one dictionary can serve every piece, as in a whole render.

The pool takes each piece's fonts out of its resources before the piece's pages are copied
(``take``: a marker name stands in for each), keeps what they say in plain Python (each glyph's
width and text, the glyphs drawn) and, once the pages are copied, points the copied resources
at one dictionary per font (``resolve``): the first piece's, copied. ``finish`` then writes that
dictionary's widths, ToUnicode map, bounding box and program (cut from the original face with
every glyph drawn) for all the pieces. A font the pool cannot vouch for (its original face not
found, a ToUnicode map with ranges, its own encoding, a glyph whose width or text differs from
another piece's) is left in its piece's resources and copied as before; ``fonts.unify``
shares its program. If HarfBuzz cannot cut a pooled font's program, ``PoolFailed`` makes
``document.assemble_into`` start again without the pool.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pikepdf
from pikepdf import Array, Dictionary, Name

from snapshot_renderer.assembly import originals
from snapshot_renderer.assembly.font_maps import glyph_text, glyph_widths

MARKER = "SnapshotPooledFont"  # a marker's name: MARKER + the pooled font's index
_FILES = (Name.FontFile2, Name.FontFile3)
# the descriptor's entries that depend on which glyphs a piece drew, or name its subset
_PER_SUBSET = frozenset(("/FontName", "/FontFile2", "/FontFile3", "/FontBBox", "/Flags"))
_FIXED_PITCH = 1
_COUNT = re.compile(rb"\d+\s+beginbfchar")
_BLOCK = 100  # bfchar entries per block (the PDF reference's limit)


class PoolFailed(Exception):
    """A pooled font's program could not be cut: assemble without the pool."""


@dataclass
class _Font:
    """A pooled font: its dictionary in the merged document and what the pieces drew with it."""

    index: int
    font: Dictionary  # in the merged document
    found: originals.Original
    file_key: Name
    widths: dict[int, bytes] = field(default_factory=dict)  # glyph id -> width, as written
    text: dict[int, bytes] = field(default_factory=dict)  # glyph id -> UTF-16BE hex


class FontPool:
    """The pooled fonts of the document ``pdf`` being merged."""

    def __init__(self, pdf: pikepdf.Pdf) -> None:
        self._pdf = pdf
        self._fonts: list[_Font] = []
        self._keys: dict[tuple[object, ...], _Font | None] = {}  # None: not pooled
        self._resolved: set[tuple[int, int]] = set()  # resources of the merged document

    def take(self, pages: Iterable[pikepdf.Page]) -> None:
        """Put markers in place of the pooled fonts in the resources of ``pages`` (a source
        document's), and of their form XObjects; call before the pages are copied."""
        markers: dict[tuple[int, int], Name | None] = {}
        seen: set[tuple[int, int]] = set()
        for page in pages:
            resources = page.obj.get(Name.Resources)
            if isinstance(resources, Dictionary):
                self._take(resources, markers, seen)

    def resolve(self, resources: pikepdf.Object | None) -> None:
        """Point the markers in copied ``resources`` (and their form XObjects') at the pooled
        fonts' dictionaries."""
        if isinstance(resources, Dictionary):
            for fonts in _font_maps(resources, self._resolved):
                for name, value in list(fonts.items()):
                    if isinstance(value, Name) and str(value).startswith("/" + MARKER):
                        fonts[name] = self._fonts[int(str(value)[len(MARKER) + 1 :])].font

    def finish(self) -> int:
        """Write each pooled font's widths, text, bounding box and program; returns how many
        fonts the pool holds."""
        for pooled in self._fonts:
            if pooled.text:  # else no piece's font was pooled after all: nothing points at it
                _finish(self._pdf, pooled)
        return len(self._fonts)

    def _take(
        self,
        resources: Dictionary,
        markers: dict[tuple[int, int], Name | None],
        seen: set[tuple[int, int]],
    ) -> None:
        for fonts in _font_maps(resources, seen):
            for name, font in list(fonts.items()):
                if not isinstance(font, Dictionary):
                    continue
                objgen = font.objgen
                marker = markers.get(objgen) if objgen != (0, 0) else None
                if objgen == (0, 0) or objgen not in markers:
                    pooled = self._add(font)
                    marker = None if pooled is None else Name(f"/{MARKER}{pooled.index}")
                    if objgen != (0, 0):
                        markers[objgen] = marker
                if marker is not None:
                    fonts[name] = marker

    def _add(self, font: Dictionary) -> _Font | None:
        """``font``'s widths and text added to its pooled font, which is made if it is the
        first of its kind; ``None`` if ``font`` is not pooled."""
        facts = _facts(font)
        if facts is None:
            return None
        key, descendant, descriptor, file_key, text = facts
        if key in self._keys:
            pooled = self._keys[key]
        else:
            pooled = self._keys[key] = self._first(font, descriptor, file_key, text)
        if pooled is None:
            return None
        widths = glyph_widths(descendant.get(Name.W))
        if (
            widths is None
            or any(pooled.widths.get(g, w) != w for g, w in widths.items())
            # one glyph for two characters (seen: 朐 and 胊 in Noto Sans CJK): the piece keeps
            # its own map, so that its text reads as it was written
            or any(pooled.text.get(g, u) != u for g, u in text.items())
        ):
            return None
        pooled.widths.update(widths)
        pooled.text.update(text)
        return pooled

    def _first(
        self, font: Dictionary, descriptor: Dictionary, file_key: Name, text: dict[int, bytes]
    ) -> _Font | None:
        """The pooled font of ``font``'s kind, if its original face is found."""
        program = descriptor[file_key]
        gids = sorted(text)
        raw = hashlib.sha256(program.read_raw_bytes()).digest()
        check = hashlib.sha256(raw + originals.pack(gids)).digest()
        found = originals.known([check]) or originals.original(
            str(descriptor.get(Name.FontFamily, "")), program.read_bytes(), gids, check
        )
        if found is None:
            return None
        copied = self._pdf.copy_foreign(font)
        assert isinstance(copied, Dictionary)
        pooled = _Font(len(self._fonts), copied, found, file_key)
        self._fonts.append(pooled)
        return pooled


def _font_maps(resources: Dictionary, seen: set[tuple[int, int]]) -> Iterable[Dictionary]:
    """The /Font dictionaries of ``resources`` and of its form XObjects, each once."""
    if resources.is_indirect:
        if resources.objgen in seen:
            return
        seen.add(resources.objgen)
    fonts = resources.get(Name.Font)
    if isinstance(fonts, Dictionary):
        yield fonts
    xobjects = resources.get(Name.XObject)
    if isinstance(xobjects, Dictionary):
        for _name, xobject in xobjects.items():
            if not isinstance(xobject, pikepdf.Stream) or xobject.get(Name.Subtype) != Name.Form:
                continue
            if xobject.objgen in seen:
                continue
            seen.add(xobject.objgen)
            inner = xobject.get(Name.Resources)
            if isinstance(inner, Dictionary):
                yield from _font_maps(inner, seen)


def _facts(
    font: Dictionary,
) -> tuple[tuple[object, ...], Dictionary, Dictionary, Name, dict[int, bytes]] | None:
    """What tells ``font``'s kind (base name, descendant's subtype, descriptor less what
    depends on the subset), its descendant, descriptor, program's key and text by glyph id;
    ``None`` if it is not a font the pool can share."""
    if font.get(Name.Subtype) != Name.Type0 or font.get(Name.Encoding) != Name("/Identity-H"):
        return None
    descendants = font.get(Name.DescendantFonts)
    if not isinstance(descendants, Array) or len(descendants) != 1:
        return None
    descendant = descendants[0]
    if not isinstance(descendant, Dictionary):
        return None
    descriptor = descendant.get(Name.FontDescriptor)
    if not isinstance(descriptor, Dictionary) or Name.CIDSet in descriptor:
        return None
    if descendant.get(Name.CIDToGIDMap, Name.Identity) != Name.Identity:
        return None
    file_keys = [key for key in _FILES if key in descriptor]
    text = glyph_text(font.get(Name.ToUnicode))
    if len(file_keys) != 1 or not text:
        return None
    rest = tuple((str(k), str(v)) for k, v in sorted(descriptor.items()) if k not in _PER_SUBSET)
    flags = int(descriptor.get(Name.Flags, 0)) & ~_FIXED_PITCH
    base = str(font.get(Name.BaseFont, ""))[1:].split("+", 1)[-1]
    key = (base, str(descendant.get(Name.Subtype)), str(file_keys[0]), flags, rest)
    return key, descendant, descriptor, file_keys[0], text


def _finish(pdf: pikepdf.Pdf, pooled: _Font) -> None:
    font = pooled.font
    descendant = font.DescendantFonts[0]
    descriptor = descendant.FontDescriptor
    every = sorted(pooled.text)
    program = originals.union(pooled.found, every, hashlib.sha256(originals.pack(every)).digest())
    if program is None:
        raise PoolFailed(f"no subset of {descriptor.get(Name.FontName)} for {len(every)} glyphs")
    stream = pikepdf.Stream(pdf, program)
    if pooled.file_key == Name.FontFile2:
        stream.Length1 = len(program)
    else:
        stream.Subtype = Name.OpenType
    descriptor[pooled.file_key] = stream
    # as WeasyPrint writes them for the glyphs drawn (weasyprint/pdf/fonts.py)
    numbers = {gid: float(width) for gid, width in pooled.widths.items()}
    bbox: list[Any] = list(descriptor.FontBBox)
    widest = max(numbers.values(), default=0.0)
    bbox[2] = int(widest) if widest == int(widest) else widest
    descriptor.FontBBox = Array(bbox)
    flags = int(descriptor.get(Name.Flags, 0)) & ~_FIXED_PITCH
    if len(numbers) > 1 and len(set(numbers.values())) == 1:
        flags |= _FIXED_PITCH
    descriptor.Flags = flags
    descendant.W = pikepdf.Object.parse(_w_array(pooled.widths))
    font.ToUnicode = pikepdf.Stream(pdf, _to_unicode(font.ToUnicode.read_bytes(), pooled.text))


def _w_array(widths: dict[int, bytes]) -> bytes:
    """``[c [w ...] ...]``, one run per range of consecutive glyph ids (WeasyPrint's form)."""
    out = [b"["]
    previous = None
    for gid in sorted(widths):
        if previous is None or gid != previous + 1:
            if previous is not None:
                out.append(b"]")
            out += [str(gid).encode(), b"["]
        out.append(widths[gid])
        previous = gid
    if previous is not None:
        out.append(b"]")
    out.append(b"]")
    return b" ".join(out)


def _to_unicode(template: bytes, text: dict[int, bytes]) -> bytes:
    """The ToUnicode map ``template`` (a piece's) with ``text``'s entries, in glyph order."""
    head = _COUNT.search(template)
    end = template.rfind(b"endbfchar")
    if head is None or end < 0:
        raise PoolFailed("a pooled font's ToUnicode map has no bfchar block")
    body = []
    gids = sorted(text)
    for start in range(0, len(gids), _BLOCK):
        block = gids[start : start + _BLOCK]
        body.append(b"%d beginbfchar\n" % len(block))
        body += [b"<%04x> <%s>\n" % (gid, text[gid]) for gid in block]
        body.append(b"endbfchar\n")
    return template[: head.start()] + b"".join(body) + template[end + len(b"endbfchar\n") :]
