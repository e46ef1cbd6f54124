"""The renderer fingerprint covers fonts by content and the engine's libraries and packages."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from snapshot_renderer.render.fingerprint import (
    code_files,
    compute_fingerprint,
    library_versions,
    package_versions,
    system_fonts,
)
from weasyprint.text.ffi import pango

LIBRARIES = {"pango": "1", "harfbuzz": "1", "fontconfig": "1", "freetype": "1", "cairo": "1"}


@pytest.fixture
def font(tmp_path: Path) -> Path:
    source = next(p for p in system_fonts() if p.suffix in (".ttf", ".otf"))
    copy = tmp_path / source.name
    shutil.copyfile(source, copy)
    return copy


def test_a_font_changed_in_content_only_changes_the_fingerprint(font: Path) -> None:
    before = compute_fingerprint(fonts=[font], libraries=LIBRARIES)
    stat = font.stat()
    data = bytearray(font.read_bytes())
    data[len(data) // 2] ^= 0x01
    font.write_bytes(bytes(data))
    os.utime(font, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same path, size and mtime

    assert compute_fingerprint(fonts=[font], libraries=LIBRARIES) != before


def test_another_font_set_or_library_version_changes_the_fingerprint(font: Path) -> None:
    base = compute_fingerprint(fonts=[font], libraries=LIBRARIES)

    assert compute_fingerprint(fonts=[], libraries=LIBRARIES) != base
    assert compute_fingerprint(fonts=[font], libraries={**LIBRARIES, "harfbuzz": "2"}) != base
    assert compute_fingerprint(fonts=[font], libraries=LIBRARIES) == base  # and it is stable


def test_the_fonts_are_those_fontconfig_lists() -> None:
    fonts = system_fonts()
    assert fonts and all(p.is_file() for p in fonts)
    if shutil.which("fc-list") is None:
        pytest.skip("fc-list is not installed")
    listed = subprocess.run(
        ["fc-list", "--format", "%{file}\\n"], capture_output=True, text=True, check=True
    ).stdout.split("\n")
    assert set(fonts) == {Path(p) for p in listed if p}


def test_the_versions_are_those_weasyprint_loaded() -> None:
    versions = library_versions()

    for name in ("pango", "harfbuzz", "fontconfig", "freetype"):
        assert re.fullmatch(r"\d+\.\d+\.\d+", versions[name]), (name, versions[name])
    major, minor, micro = (int(part) for part in versions["pango"].split("."))
    assert major * 10000 + minor * 100 + micro == pango.pango_version()
    assert versions["cairo"] == "not loaded" or re.fullmatch(r"\d+\.\d+\.\d+", versions["cairo"])
    packages = package_versions()
    assert all(packages[name] != "not installed" for name in ("weasyprint", "pydyf", "tinycss2"))


def test_the_default_fingerprint_covers_the_system_fonts() -> None:
    assert compute_fingerprint() != compute_fingerprint(fonts=[])


def test_the_code_that_shapes_the_html_is_fingerprinted() -> None:
    names = {path.name for path in code_files()}

    assert {"view.py", "worker.py", "templates.py"} <= names
    # the pieces of a big room (issue 11): cut, rendered, assembled
    assert {"pieces.py", "chunks.py", "plan.py", "keys.py", "merge.py", "stamp.py"} <= names
