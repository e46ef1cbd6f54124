"""What a Type0 font's own objects say of its glyphs: the text each maps to (its ToUnicode
map) and their widths (its descendant's ``/W`` array), by glyph id, as WeasyPrint writes them.
"""

from __future__ import annotations

import re

import pikepdf
from pikepdf import Array

_BFCHAR = re.compile(rb"<([0-9A-Fa-f]{4})>\s*<([0-9A-Fa-f]+)>")
_W_TOKEN = re.compile(rb"\[|\]|[-+]?[0-9.]+")


def glyph_text(to_unicode: pikepdf.Object | None) -> dict[int, bytes] | None:
    """Glyph id -> UTF-16BE hex of a ToUnicode map of ``bfchar`` entries only (WeasyPrint's)."""
    if not isinstance(to_unicode, pikepdf.Stream):
        return None
    data = to_unicode.read_bytes()
    start = data.find(b"beginbfchar")
    if start < 0 or b"beginbfrange" in data:
        return None
    text: dict[int, bytes] = {}
    for gid, utf16 in _BFCHAR.findall(data, start):
        text.setdefault(int(gid, 16), utf16.lower())
    return text


def glyph_widths(array: pikepdf.Object | None) -> dict[int, bytes] | None:
    """Glyph id -> width of a /W array (``c [w ...]`` or ``c1 c2 w``), widths as written."""
    if not isinstance(array, Array):
        return None
    tokens = _W_TOKEN.findall(array.unparse())
    if not tokens or tokens[0] != b"[" or tokens[-1] != b"]":
        return None
    widths: dict[int, bytes] = {}
    i, end = 1, len(tokens) - 1
    try:
        while i < end:
            first = int(tokens[i])
            if tokens[i + 1] == b"[":
                i += 2
                while tokens[i] != b"]":
                    widths[first] = tokens[i]
                    first, i = first + 1, i + 1
                i += 1
            else:
                for gid in range(first, int(tokens[i + 1]) + 1):
                    widths[gid] = tokens[i + 2]
                i += 3
    except (ValueError, IndexError):
        return None
    return widths
