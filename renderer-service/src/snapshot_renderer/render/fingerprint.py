"""The renderer fingerprint: a digest of everything besides the content that shapes a PDF.

Templates, CSS, bundled fonts and other assets, the Python modules that build the template
context and drive WeasyPrint, the hash version, and the build's engine: the versions of the
Python packages that lay out and write the PDF, the versions of the native libraries as loaded
in this process by WeasyPrint (pango, harfbuzz, fontconfig, freetype; cairo only if loaded:
WeasyPrint 53+ writes PDFs with pydyf and does not load it), and the content of every font file
fontconfig offers (its system font set: CSS names only the text fonts and fontconfig falls back
to the others, so any of them can reach a PDF). Two replicas built on different days with
different fonts or libraries get different render keys, never different bytes under one key.

Fonts are digested by content (SHA-256), not by path + size + mtime: package builds and image
layers set mtimes, and a rebuilt font of the same size would slip through. It is cheap enough to
do at every start: 296 files, 158 MB took 0.15 s here (OpenSSL's SHA-256), once, in a thread,
before the renderer consumes. An upgrade of any of these invalidates old cache entries by itself
(DESIGN §3).
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.metadata
import logging
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import cffi
from snapshot_shared.hashing import HASH_VERSION, render_key

import snapshot_renderer
from snapshot_renderer.render import pieces, view, worker
from snapshot_renderer.render import templates as jinja_templates
from snapshot_renderer.render.resources import assets_dir, templates_dir

log = logging.getLogger(__name__)
PACKAGES = ("weasyprint", "pydyf", "tinycss2", "cssselect2", "fonttools", "pillow", "jinja2")
_CDEF = """
const char *pango_version_string(void);
const char *hb_version_string(void);
int FcGetVersion(void);
typedef void *FT_Library;
int FT_Init_FreeType(FT_Library *library);
void FT_Library_Version(FT_Library library, int *major, int *minor, int *patch);
int FT_Done_FreeType(FT_Library library);
const char *cairo_version_string(void);
typedef struct _FcConfig FcConfig;
typedef struct _FcPattern FcPattern;
typedef struct { int nfont; int sfont; FcPattern **fonts; } FcFontSet;
FcConfig *FcConfigGetCurrent(void);
FcFontSet *FcConfigGetFonts(FcConfig *config, int set);
int FcPatternGetString(const FcPattern *p, const char *object, int n, unsigned char **s);
"""
_FFI = cffi.FFI()
_FFI.cdef(_CDEF)
SONAMES = {
    "pango": "libpango-1.0.so.0",
    "harfbuzz": "libharfbuzz.so.0",
    "fontconfig": "libfontconfig.so.1",
    "freetype": "libfreetype.so.6",
    "cairo": "libcairo.so.2",
}


def _loaded(name: str) -> Any | None:
    """The library ``name`` as already loaded in this process (by WeasyPrint), or ``None``."""
    try:  # ctypes for the probe: cffi's dlopen crashes on RTLD_NOLOAD of an absent library
        ctypes.CDLL(SONAMES[name], mode=os.RTLD_NOLOAD | os.RTLD_LAZY)
    except OSError:
        return None
    return _FFI.dlopen(SONAMES[name])  # already loaded: the same instance WeasyPrint uses


def _version(name: str, lib: Any) -> str:
    if name == "pango":
        return str(_FFI.string(lib.pango_version_string()).decode())
    if name == "harfbuzz":
        return str(_FFI.string(lib.hb_version_string()).decode())
    if name == "cairo":
        return str(_FFI.string(lib.cairo_version_string()).decode())
    if name == "fontconfig":
        v = lib.FcGetVersion()
        return f"{v // 10000}.{v // 100 % 100}.{v % 100}"
    handle = _FFI.new("FT_Library *")
    if lib.FT_Init_FreeType(handle) != 0:
        return "unknown"
    parts = [_FFI.new("int *") for _ in range(3)]
    lib.FT_Library_Version(handle[0], *parts)
    lib.FT_Done_FreeType(handle[0])
    return ".".join(str(p[0]) for p in parts)


def library_versions() -> dict[str, str]:
    """Versions of the native libraries WeasyPrint loaded, ``not loaded`` for the others."""
    import weasyprint.text.ffi  # noqa: F401  (loads pango, harfbuzz, fontconfig and freetype)

    versions = {}
    for name in SONAMES:
        lib = _loaded(name)
        versions[name] = "not loaded" if lib is None else _version(name, lib)
    return versions


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def system_fonts() -> list[Path]:
    """The font files of fontconfig's system set (what ``fc-list`` lists), sorted."""
    lib = _loaded("fontconfig")
    if lib is None:
        library_versions()  # imports WeasyPrint's ffi, which loads fontconfig
        lib = _loaded("fontconfig")
    if lib is None:
        return []
    fonts = lib.FcConfigGetFonts(lib.FcConfigGetCurrent(), 0)  # FcSetSystem
    if fonts == _FFI.NULL:
        return []
    found = set()
    out = _FFI.new("unsigned char **")
    for i in range(fonts.nfont):
        if lib.FcPatternGetString(fonts.fonts[i], b"file", 0, out) == 0:  # FcResultMatch
            found.add(Path(os.fsdecode(_FFI.string(_FFI.cast("char *", out[0])))))
    return sorted(found)


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))


def _digest_files(digest: Any, label: str, root: Path, files: Iterable[Path]) -> None:
    for path in files:
        data = path.read_bytes()
        name = path.relative_to(root).as_posix()
        digest.update(f"{label}:{name}:{len(data)}\n".encode())
        digest.update(data)


def _digest_fonts(digest: Any, fonts: Iterable[Path]) -> int:
    count = 0
    for path in fonts:
        try:
            with path.open("rb") as f:
                content = hashlib.file_digest(f, "sha256").hexdigest()
        except OSError:
            content = "unreadable"
        digest.update(f"font:{path}:{content}\n".encode())
        count += 1
    return count


def code_files() -> list[Path]:
    """The renderer modules that shape the output: the view, the worker, the Jinja2 environment
    (its extension rewrites the template source), and the pieces of a big room: how they are
    cut, rendered and assembled (issue 11)."""
    modules = [Path(module.__file__ or "") for module in (view, worker, jinja_templates, pieces)]
    package = Path(snapshot_renderer.__file__ or "").parent
    return modules + [
        path
        for name in ("pieces", "assembly")
        for path in _files(package / name)
        if path.suffix == ".py"
    ]


def compute_fingerprint(
    templates: Path | None = None,
    assets: Path | None = None,
    fonts: Iterable[Path] | None = None,
    libraries: dict[str, str] | None = None,
) -> str:
    """SHA-256 hex of templates, assets, output-shaping code, engine and fonts (blocking)."""
    started = time.perf_counter()
    templates = templates or templates_dir()
    assets = assets or assets_dir()
    digest = hashlib.sha256()
    digest.update(f"hash_version={HASH_VERSION}\n".encode())
    engine = {**package_versions(), **(library_versions() if libraries is None else libraries)}
    digest.update("".join(f"{k}={v}\n" for k, v in sorted(engine.items())).encode())
    _digest_files(digest, "template", templates, _files(templates))
    _digest_files(digest, "asset", assets, _files(assets))
    code = code_files()
    _digest_files(digest, "code", Path(snapshot_renderer.__file__ or "").parent, code)
    count = _digest_fonts(digest, system_fonts() if fonts is None else fonts)
    log.info(
        "renderer fingerprint computed",
        extra={"seconds": round(time.perf_counter() - started, 3), "fonts": count, **engine},
    )
    return digest.hexdigest()


def job_render_key(content_hash: str, fingerprint: str) -> str:
    """The cache key of one job's PDF for this renderer build."""
    return render_key(content_hash, fingerprint)
