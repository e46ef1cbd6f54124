"""Font subsets of a merged document: one tag per distinct font program, one copy of each.

WeasyPrint names a font subset by the font, not by the glyphs it keeps, so two pieces embed
different subsets of DejaVu Sans under the same ``XXXXXX+DejaVu-Sans`` name; viewers and
extractors that key fonts by name could draw one piece with the other's glyphs. Each embedded
font program gets a tag derived from its bytes instead, and identical programs are kept once.
Before that, the TrueType subsets of one font are merged into one program (``truetype``): a
document of 40 pieces embedded 58 programs (199 KB) where a whole render embeds 3 (9 KB).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pikepdf
from pikepdf import Array, Dictionary, Name

from snapshot_renderer.assembly.truetype import merge_subsets

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


def _base_name(descriptor: Dictionary) -> str:
    return _retagged(str(descriptor.FontName)[1:], "")[1:]


def _merge_truetype(pdf: pikepdf.Pdf, descriptors: list[Dictionary]) -> None:
    """Point every descriptor of one TrueType font at one program holding all their glyphs."""
    groups: dict[str, list[Dictionary]] = {}
    for descriptor in descriptors:
        if Name.FontFile2 in descriptor:
            groups.setdefault(_base_name(descriptor), []).append(descriptor)
    for members in groups.values():
        distinct: dict[bytes, pikepdf.Object] = {}
        for descriptor in members:
            program = descriptor.FontFile2
            distinct.setdefault(hashlib.sha256(program.read_raw_bytes()).digest(), program)
        if len(distinct) < 2:
            continue
        merged = merge_subsets([distinct[k].read_bytes() for k in sorted(distinct)])
        if merged is None:
            continue
        stream = pikepdf.Stream(pdf, merged)
        stream.Length1 = len(merged)
        for descriptor in members:
            descriptor.FontFile2 = stream


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
    descriptors = {
        d.objgen: d for f in fonts if isinstance(d := f.get(Name.FontDescriptor), Dictionary)
    }
    _merge_truetype(pdf, list(descriptors.values()))
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
