"""The renderer fingerprint: a digest of everything besides the content that shapes a PDF.

Templates, CSS, bundled fonts and other assets, the Python modules that build the template
context and drive WeasyPrint, the WeasyPrint version and the hash version. Any change makes new
render keys, so an upgrade invalidates old cache entries by itself (DESIGN §3).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

import weasyprint
from snapshot_shared.hashing import HASH_VERSION, render_key

from snapshot_renderer.render import view, worker
from snapshot_renderer.render.resources import assets_dir, templates_dir


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))


def _digest_files(digest: hashlib._Hash, label: str, root: Path, files: Iterable[Path]) -> None:
    for path in files:
        data = path.read_bytes()
        name = path.relative_to(root).as_posix()
        digest.update(f"{label}:{name}:{len(data)}\n".encode())
        digest.update(data)


def compute_fingerprint(templates: Path | None = None, assets: Path | None = None) -> str:
    """SHA-256 hex of templates, assets, output-shaping code and engine version."""
    templates = templates or templates_dir()
    assets = assets or assets_dir()
    digest = hashlib.sha256()
    digest.update(f"hash_version={HASH_VERSION}\nweasyprint={weasyprint.__version__}\n".encode())
    _digest_files(digest, "template", templates, _files(templates))
    _digest_files(digest, "asset", assets, _files(assets))
    code = [Path(module.__file__ or "") for module in (view, worker)]
    _digest_files(digest, "code", code[0].parent, code)
    return digest.hexdigest()


def job_render_key(content_hash: str, fingerprint: str) -> str:
    """The cache key of one job's PDF for this renderer build."""
    return render_key(content_hash, fingerprint)
