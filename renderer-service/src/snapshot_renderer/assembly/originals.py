"""Original font faces of embedded subsets, and new subsets of them, with HarfBuzz.

WeasyPrint subsets a font in two HarfBuzz passes (``weasyprint/pdf/fonts.py``,
``Font._harfbuzz_subset``): the glyphs drawn, keeping their ids, then every id up to the last
one drawn, without hints. Given the original face and the union of the glyphs that several
pieces drew, the same two passes give the program a whole render would embed: one program for
all the pieces, no bigger than the whole render's. The face is found among fontconfig's fonts
by family and ``head`` table, and trusted only if repeating the two passes with one piece's
glyphs gives that piece's program byte for byte.
"""

from __future__ import annotations

import os
import struct
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

import cffi

_ffi = cffi.FFI()
_ffi.cdef(
    """
    typedef struct hb_blob_t hb_blob_t;
    typedef struct hb_face_t hb_face_t;
    typedef struct hb_set_t hb_set_t;
    typedef struct hb_subset_input_t hb_subset_input_t;
    typedef uint32_t hb_tag_t;
    typedef uint32_t hb_codepoint_t;
    hb_blob_t * hb_blob_create_from_file_or_fail (const char *file_name);
    void hb_blob_destroy (hb_blob_t *blob);
    const char * hb_blob_get_data (hb_blob_t *blob, unsigned int *length);
    unsigned int hb_face_count (hb_blob_t *blob);
    hb_face_t * hb_face_create (hb_blob_t *blob, unsigned int index);
    void hb_face_destroy (hb_face_t *face);
    hb_blob_t * hb_face_reference_blob (hb_face_t *face);
    hb_blob_t * hb_face_reference_table (const hb_face_t *face, hb_tag_t tag);
    unsigned int hb_face_get_glyph_count (const hb_face_t *face);
    hb_tag_t hb_tag_from_string (const char *str, int len);
    void hb_set_add_sorted_array (
        hb_set_t *set, const hb_codepoint_t *sorted_codepoints, unsigned int num_codepoints);
    hb_subset_input_t * hb_subset_input_create_or_fail (void);
    void hb_subset_input_destroy (hb_subset_input_t *input);
    hb_set_t * hb_subset_input_glyph_set (hb_subset_input_t *input);
    hb_set_t * hb_subset_input_set (hb_subset_input_t *input, int set_type);
    void hb_subset_input_set_flags (hb_subset_input_t *input, unsigned value);
    hb_face_t * hb_subset_or_fail (hb_face_t *source, const hb_subset_input_t *input);

    typedef int FcBool;
    typedef struct _FcConfig FcConfig;
    typedef struct _FcPattern FcPattern;
    typedef unsigned char FcChar8;
    typedef struct _FcFontSet { int nfont; int sfont; FcPattern **fonts; } FcFontSet;
    FcConfig * FcInitLoadConfigAndFonts (void);
    FcFontSet * FcConfigGetFonts (FcConfig *config, int set);
    int FcPatternGetString (FcPattern *p, const char *object, int n, FcChar8 **s);
    int FcPatternGetInteger (FcPattern *p, const char *object, int n, int *i);
    """
)

# hb_subset_flags_t and hb_subset_sets_t (hb-subset.h)
_NO_HINTING, _RETAIN_GIDS, _DESUBROUTINIZE = 0x1, 0x2, 0x4
_PASSTHROUGH_UNRECOGNIZED, _NOTDEF_OUTLINE = 0x20, 0x40
_SETS_DROP_TABLE_TAG = 3
_DROPPED_TABLES = (
    b"BASE", b"DSIG", b"EBDT", b"EBLC", b"EBSC", b"GPOS", b"GSUB", b"JSTF", b"LTSH", b"PCLT",
    b"SVG ",
)  # fmt: skip
_CACHED_BYTES = 32 * 1024 * 1024  # new subsets kept for the next assembly in this process


def _dlopen(*names: str) -> Any:
    for name in names:
        with suppress(OSError):
            return _ffi.dlopen(name)
    return None


_hb = _dlopen("libharfbuzz.so.0", "harfbuzz", "libharfbuzz-0", "libharfbuzz.0.dylib")
_hb_subset = _dlopen(
    "libharfbuzz-subset.so.0", "harfbuzz-subset", "libharfbuzz-subset-0",
    "libharfbuzz-subset.0.dylib",
)  # fmt: skip
_fc = _dlopen("libfontconfig.so.1", "fontconfig", "libfontconfig-1", "libfontconfig.1.dylib")
_lock = threading.Lock()


def _head_identity(head: bytes) -> bytes:
    """fontRevision, unitsPerEm, created and modified: which font, whatever the subset."""
    return head[4:8] + head[18:36]


def table(program: bytes, tag: bytes) -> bytes | None:
    """One table of an sfnt program, or ``None``."""
    try:
        count = struct.unpack_from(">H", program, 4)[0]
        for i in range(count):
            name, _sum, offset, length = struct.unpack_from(">4sLLL", program, 12 + 16 * i)
            if name == tag:
                return program[offset : offset + length]
    except struct.error:
        return None
    return None


class Face:
    """One face of a font file, opened by HarfBuzz (the file is mapped, not read)."""

    def __init__(self, path: str, index: int) -> None:
        blob = _hb.hb_blob_create_from_file_or_fail(path.encode())
        if blob == _ffi.NULL:
            raise OSError(f"cannot open {path}")
        face = _hb.hb_face_create(blob, index)
        _hb.hb_blob_destroy(blob)  # the face holds its own reference
        self.key = (path, index)
        self._face = _ffi.gc(face, _hb.hb_face_destroy)
        self.glyph_count = int(_hb.hb_face_get_glyph_count(face))
        head = _hb.hb_face_reference_table(face, _hb.hb_tag_from_string(b"head", 4))
        self.identity = _head_identity(_blob_bytes(head))

    def subset(self, gids: Sequence[int], hinting: bool) -> bytes | None:
        """What WeasyPrint embeds of this face when it draws ``gids`` (sorted, not empty)."""
        sub = _hb_subset
        source = _ffi.gc(sub.hb_subset_input_create_or_fail(), sub.hb_subset_input_destroy)
        if source == _ffi.NULL:
            return None
        glyphs = sub.hb_subset_input_glyph_set(source)
        _hb.hb_set_add_sorted_array(glyphs, _ffi.new("hb_codepoint_t[]", list(gids)), len(gids))
        notdef = _NOTDEF_OUTLINE if gids[-1] >= self.glyph_count else 0
        sub.hb_subset_input_set_flags(
            source, _RETAIN_GIDS | _PASSTHROUGH_UNRECOGNIZED | _DESUBROUTINIZE | notdef
        )
        dropped = [_hb.hb_tag_from_string(tag, 4) for tag in _DROPPED_TABLES]
        _hb.hb_set_add_sorted_array(
            sub.hb_subset_input_set(source, _SETS_DROP_TABLE_TAG),
            _ffi.new("hb_codepoint_t[]", dropped),
            len(dropped),
        )
        first = sub.hb_subset_or_fail(self._face, source)
        if first == _ffi.NULL:
            return None
        first = _ffi.gc(first, _hb.hb_face_destroy)
        keep = gids[-1] + 1
        _hb.hb_set_add_sorted_array(glyphs, _ffi.new("hb_codepoint_t[]", list(range(keep))), keep)
        flags = _PASSTHROUGH_UNRECOGNIZED | _DESUBROUTINIZE | notdef
        sub.hb_subset_input_set_flags(source, flags | (0 if hinting else _NO_HINTING))
        second = sub.hb_subset_or_fail(first, source)
        if second == _ffi.NULL:
            return None
        try:
            return _blob_bytes(_hb.hb_face_reference_blob(second)) or None
        finally:
            _hb.hb_face_destroy(second)


def _blob_bytes(blob: Any) -> bytes:
    try:
        length = _ffi.new("unsigned int *")
        data = _hb.hb_blob_get_data(blob, length)
        return b"" if data == _ffi.NULL else bytes(_ffi.buffer(data, length[0]))
    finally:
        _hb.hb_blob_destroy(blob)


def _config() -> Any:
    """The worker's fontconfig configuration (fonts added by ``@font-face`` included) if this
    process renders, else the default one."""
    with suppress(ImportError, AttributeError):
        from snapshot_renderer.render import worker  # noqa: PLC0415 (renderer processes only)

        state = worker._state
        if state is not None:
            address = int(_ffi.cast("uintptr_t", state.font_config._config))
            return _ffi.cast("FcConfig *", address)
    global _default_config
    if _default_config is None:
        _default_config = _fc.FcInitLoadConfigAndFonts()
    return _default_config


_default_config: Any = None


def _candidates(config: Any, family: str) -> list[tuple[str, int]]:
    """Files and face indexes of the fonts of ``family`` in ``config``."""
    found: list[tuple[str, int]] = []
    wanted = family.encode()
    text = _ffi.new("FcChar8 **")
    number = _ffi.new("int *")
    for which in (0, 1):  # FcSetSystem, FcSetApplication
        fonts = _fc.FcConfigGetFonts(config, which)
        if fonts == _ffi.NULL:
            continue
        for i in range(fonts.nfont):
            pattern = fonts.fonts[i]
            n = 0
            while _fc.FcPatternGetString(pattern, b"family", n, text) == 0:
                if _ffi.string(text[0]) == wanted:
                    break
                n += 1
            else:
                continue
            if _fc.FcPatternGetString(pattern, b"file", 0, text) != 0:
                continue
            path = os.fsdecode(_ffi.string(text[0]))
            index = number[0] if _fc.FcPatternGetInteger(pattern, b"index", 0, number) == 0 else 0
            found.append((path, index & 0xFFFF))  # named instances keep the face in 16 bits
    return sorted(set(found))


@dataclass(frozen=True)
class Original:
    """The face a subset was cut from, and whether WeasyPrint kept its hints."""

    face: Face
    hinting: bool


_faces: OrderedDict[tuple[str, int], Face] = OrderedDict()
_families: dict[tuple[int, str], list[tuple[str, int]]] = {}
_verified: OrderedDict[bytes, Original] = OrderedDict()
_unions: OrderedDict[tuple[tuple[str, int], bool, bytes], bytes] = OrderedDict()


def _has(library: Any, *names: str) -> bool:
    try:
        return library is not None and all(getattr(library, name) for name in names)
    except AttributeError:  # an older HarfBuzz (hb_blob_create_from_file_or_fail: 2.8.2)
        return False


_AVAILABLE = (
    _has(_hb, "hb_blob_create_from_file_or_fail", "hb_face_create", "hb_set_add_sorted_array")
    and _has(_hb_subset, "hb_subset_input_create_or_fail", "hb_subset_or_fail")
    and _has(_fc, "FcConfigGetFonts", "FcPatternGetInteger")
)


def available() -> bool:
    """Whether HarfBuzz (with its subsetter) and fontconfig are there to find faces."""
    return _AVAILABLE


def _face(key: tuple[str, int]) -> Face | None:
    face = _faces.get(key)
    if face is None:
        try:
            face = Face(*key)
        except OSError:
            return None
        _faces[key] = face
        while len(_faces) > 16:
            _faces.popitem(last=False)
    return face


def known(digests: Iterable[bytes]) -> Original | None:
    """The face already found (by ``original``) for one of these programs, if any."""
    with _lock:
        for digest in digests:
            if (found := _verified.get(digest)) is not None:
                return found
    return None


def original(family: str, program: bytes, gids: Sequence[int], digest: bytes) -> Original | None:
    """The face of ``family`` that WeasyPrint subset to ``program`` drawing ``gids`` (sorted),
    checked by doing it again; ``None`` if not found. ``digest`` names the program and its
    glyphs (for ``known``)."""
    if not available() or not gids:
        return None
    with _lock:
        if (found := _verified.get(digest)) is not None:
            return found
        head = table(program, b"head")
        if head is None:
            return None
        config = _config()
        where = (int(_ffi.cast("uintptr_t", config)), family)
        if where not in _families:
            _families[where] = _candidates(config, family)
        for key in _families[where]:
            face = _face(key)
            if face is None or face.identity != _head_identity(head):
                continue
            for hinting in (False, True):
                if face.subset(gids, hinting) == program:
                    found = _verified[digest] = Original(face, hinting)
                    while len(_verified) > 256:
                        _verified.popitem(last=False)
                    return found
    return None


def union(found: Original, gids: Sequence[int], digest: bytes) -> bytes | None:
    """The subset of ``found`` drawing ``gids`` (sorted; SHA-256 of their packing: ``digest``),
    as WeasyPrint would embed it."""
    key = (found.face.key, found.hinting, digest)
    with _lock:
        if (program := _unions.get(key)) is not None:
            _unions.move_to_end(key)
            return program
        program = found.face.subset(gids, found.hinting)
        if program is not None and len(program) <= _CACHED_BYTES:
            _unions[key] = program
            while sum(len(p) for p in _unions.values()) > _CACHED_BYTES:
                _unions.popitem(last=False)
        return program


def pack(gids: Iterable[int]) -> bytes:
    return struct.pack(f">{len(g := sorted(gids))}L", *g)


def forget() -> None:
    """Drop every face, check and subset kept by this process (tests: a fresh process)."""
    with _lock:
        _verified.clear()
        _unions.clear()
        _faces.clear()
        _families.clear()
