"""Where the bundled templates and assets live, for wheel and workspace installs alike."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import snapshot_renderer


def _locate(name: str) -> Path:
    """A wheel puts the folder inside the package; a workspace checkout has it beside ``src``."""
    packaged = Path(snapshot_renderer.__file__).parent / name
    if packaged.is_dir():
        return packaged
    checkout = Path(__file__).resolve().parents[3] / name
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(f"renderer {name} directory not found (looked in {packaged})")


@cache
def templates_dir() -> Path:
    """The directory of the Jinja2 templates."""
    return _locate("templates").resolve()


@cache
def assets_dir() -> Path:
    """The directory of the CSS and fonts the fetcher may serve."""
    return _locate("assets").resolve()
