"""Font subsets of a merged document: one tag per distinct font program, one copy of each.

WeasyPrint names a font subset by the font, not by the glyphs it keeps, so two pieces embed
different subsets of DejaVu Sans under the same ``XXXXXX+DejaVu-Sans`` name; viewers and
extractors that key fonts by name could draw one piece with the other's glyphs. Each embedded
font program gets a tag derived from its bytes instead, and identical programs are kept once.
Before that, the subsets of one font become one program: cut again from the original face with
the union of the glyphs the pieces drew (``originals``), which is what a whole render embeds; or,
if that face is not found, for TrueType only, merged from the subsets (``truetype``). A document
of 40 pieces embedded 58 programs (199 KB) where a whole render embeds 3 (9 KB); a CJK room of
300 messages in 7 pieces embedded its ideographs' font 6 times (3,240 KiB) for 2,075 KiB whole.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pikepdf
from pikepdf import Array, Dictionary, Name

from snapshot_renderer.assembly import originals
from snapshot_renderer.assembly.font_maps import glyph_text
from snapshot_renderer.assembly.truetype import merge_subsets

_FONT_FILES = (Name.FontFile, Name.FontFile2, Name.FontFile3)


def _font_dicts(resources: pikepdf.Object, seen: set[tuple[int, int]]) -> Iterator[Dictionary]:
    """Every font dictionary reachable from ``resources``, form XObjects' resources included."""
    if resources.is_indirect:  # a piece's pages share theirs
        if resources.objgen in seen:
            return
        seen.add(resources.objgen)
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


def _drawn(fonts: list[Dictionary]) -> dict[tuple[int, int], set[int] | None]:
    """The glyph ids each font descriptor's program draws, from its fonts' ToUnicode maps
    (WeasyPrint maps every glyph it draws, one ``bfchar`` each); ``None`` where unknown."""
    drawn: dict[tuple[int, int], set[int] | None] = {}
    for font in fonts:
        descendants = font.get(Name.DescendantFonts)
        if not isinstance(descendants, Array):
            continue
        text = glyph_text(font.get(Name.ToUnicode))
        for descendant in descendants:
            descriptor = descendant.get(Name.FontDescriptor)
            if isinstance(descendant, Dictionary) and isinstance(descriptor, Dictionary):
                known = drawn.setdefault(descriptor.objgen, set())
                if known is None or text is None:
                    drawn[descriptor.objgen] = None
                else:
                    known.update(text)
    return drawn


def _resubset(
    pdf: pikepdf.Pdf,
    descriptors: list[Dictionary],
    drawn: dict[tuple[int, int], set[int] | None],
    digests: dict[tuple[int, int], bytes],
) -> set[tuple[int, int]]:
    """Point the descriptors of each font at one program cut from its original face with every
    glyph they draw; returns the descriptors done so. Fills ``digests`` (SHA-256 of a program
    object's raw bytes) for the programs it reads."""
    groups: dict[tuple[Name, str, str], list[Dictionary]] = {}
    for descriptor in descriptors:
        for key in (Name.FontFile2, Name.FontFile3):
            if key in descriptor:
                family = str(descriptor.get(Name.FontFamily, ""))
                groups.setdefault((key, _base_name(descriptor), family), []).append(descriptor)
    done: set[tuple[int, int]] = set()
    for (key, _name, family), members in groups.items():
        programs: dict[tuple[int, int], tuple[pikepdf.Object, set[int]]] = {}
        for descriptor in members:
            gids = drawn.get(descriptor.objgen)
            if gids is None or not gids:
                break
            program = descriptor[key]
            programs.setdefault(program.objgen, (program, set()))[1].update(gids)
        else:
            if len(programs) < 2:
                continue
            stream = _cut_once(pdf, family, programs, digests)
            if stream is None:
                continue
            if key == Name.FontFile2:
                stream.Length1 = len(stream.read_raw_bytes())
            else:
                stream.Subtype = Name.OpenType
            for descriptor in members:
                descriptor[key] = stream
                done.add(descriptor.objgen)
    return done


def _cut_once(
    pdf: pikepdf.Pdf,
    family: str,
    programs: dict[tuple[int, int], tuple[pikepdf.Object, set[int]]],
    digests: dict[tuple[int, int], bytes],
) -> pikepdf.Stream | None:
    """One program with every glyph of ``programs`` (subsets of one font of ``family``, by
    object, with the glyph ids drawn with each), cut from the original face; ``None`` if that
    face is not found."""
    checks = {}  # a program with its glyphs, by which the face may have been found before
    for objgen, (program, gids) in programs.items():
        if objgen not in digests:
            digests[objgen] = hashlib.sha256(program.read_raw_bytes()).digest()
        checks[objgen] = hashlib.sha256(digests[objgen] + originals.pack(gids)).digest()
    found = originals.known(checks[o] for o in sorted(checks))
    if found is None:
        # the smallest subset is the quickest to cut again: it identifies the face
        objgen = min(programs, key=lambda o: (len(programs[o][1]), o))
        program, gids = programs[objgen]
        found = originals.original(family, program.read_bytes(), sorted(gids), checks[objgen])
        if found is None:
            return None
    every = set().union(*(g for _p, g in programs.values()))
    union = originals.union(found, sorted(every), hashlib.sha256(originals.pack(every)).digest())
    return None if union is None else pikepdf.Stream(pdf, union)


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
        merged = merge_subsets(distinct[k].read_bytes() for k in sorted(distinct))  # one at a time
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
    digests: dict[tuple[int, int], bytes] = {}
    done = _resubset(pdf, list(descriptors.values()), _drawn(fonts), digests)
    _merge_truetype(pdf, [d for key, d in descriptors.items() if key not in done])
    tags: dict[tuple[int, int], str] = {}
    for font in fonts:
        descriptor = font.get(Name.FontDescriptor)
        if not isinstance(descriptor, Dictionary):
            continue
        for key in _FONT_FILES:
            program = descriptor.get(key)
            if program is None:
                continue
            digest = digests.get(program.objgen)
            if digest is None:
                digest = digests[program.objgen] = hashlib.sha256(program.read_raw_bytes()).digest()
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
