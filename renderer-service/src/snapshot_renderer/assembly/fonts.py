"""Font subsets of a merged document: one tag per distinct font program, one copy of each.

WeasyPrint names a font subset by the font, not by the glyphs it keeps, so two pieces embed
different subsets of DejaVu Sans under the same ``XXXXXX+DejaVu-Sans`` name; viewers and
extractors that key fonts by name could draw one piece with the other's glyphs. Each embedded
font program gets a tag derived from its bytes instead, and identical programs (a piece cached
twice, the same glyphs in two pieces) are kept once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pikepdf
from pikepdf import Array, Dictionary, Name

_FONT_FILES = (Name.FontFile, Name.FontFile2, Name.FontFile3)


def _font_dicts(resources: pikepdf.Object, seen: set[tuple[int, int]]) -> Iterator[Dictionary]:
    """Every font dictionary reachable from ``resources``, form XObjects' resources included."""
    fonts = resources.get(Name.Font)
    if isinstance(fonts, Dictionary):
        for _name, font in fonts.items():
            if isinstance(font, Dictionary) and font.objgen not in seen:
                seen.add(font.objgen)
                yield font
                for descendant in font.get(Name.DescendantFonts, Array()):
                    if isinstance(descendant, Dictionary):
                        yield descendant
    xobjects = resources.get(Name.XObject)
    if isinstance(xobjects, Dictionary):
        for _name, xobject in xobjects.items():
            if xobject.objgen in seen or xobject.get(Name.Subtype) != Name.Form:
                continue
            seen.add(xobject.objgen)
            inner = xobject.get(Name.Resources)
            if isinstance(inner, Dictionary):
                yield from _font_dicts(inner, seen)


def _tag(data: bytes) -> str:
    digest = hashlib.sha256(data).digest()
    return "".join(chr(ord("A") + b % 26) for b in digest[:6])


def _retagged(name: str, tag: str) -> str:
    base = name.split("+", 1)[1] if len(name) > 7 and name[6] == "+" else name
    return f"{tag}+{base}"


def unify(pdf: pikepdf.Pdf) -> int:
    """Retag every embedded subset by its bytes and share identical programs; returns how many
    font programs remain."""
    seen: set[tuple[int, int]] = set()
    programs: dict[bytes, pikepdf.Object] = {}
    fonts = [
        font
        for page in pdf.pages
        for font in _font_dicts(page.obj.get(Name.Resources, Dictionary()), seen)
    ]
    tags: dict[tuple[int, int], str] = {}
    for font in fonts:
        descriptor = font.get(Name.FontDescriptor)
        if not isinstance(descriptor, Dictionary):
            continue
        for key in _FONT_FILES:
            program = descriptor.get(key)
            if program is None:
                continue
            raw = program.read_raw_bytes()
            digest = hashlib.sha256(raw).digest()
            descriptor[key] = programs.setdefault(digest, program)
            tag = _tag(digest)
            tags[font.objgen] = tag
            descriptor.FontName = Name("/" + _retagged(str(descriptor.FontName)[1:], tag))
    for font in fonts:  # a Type0 font carries its descendant's name
        descendants = font.get(Name.DescendantFonts, Array())
        found = tags.get(font.objgen) or next(
            (tags[d.objgen] for d in descendants if d.objgen in tags), None
        )
        if found and Name.BaseFont in font:
            font.BaseFont = Name("/" + _retagged(str(font.BaseFont)[1:], found))
    return len(programs)
