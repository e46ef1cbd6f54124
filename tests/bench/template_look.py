"""Does the snapshot template of this tree look like the one at a git ref?

Renders every sample room of ``support.samples`` twice in this process, once with the
templates and CSS of ``REF`` (``git archive``; the Python code is this tree's) and once with this
tree's, whole and as assembled pieces, and compares what a reader sees: the page count, each
page's text (pypdf) and each page's pixels (``pdftoppm`` at ``DPI``). A template change that only
cuts cost must leave page counts and text identical and pixels within anti-aliasing.

From ``tests/``: ``python -m bench.template_look [REF] [DPI]`` (defaults ``main`` and 100).
Prints one row per sample and path, and exits 1 when a page count or a page's text differs.
"""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageChops
from pypdf import PdfReader
from snapshot_renderer.assembly.document import assemble
from snapshot_renderer.assembly.merge import page_count
from snapshot_renderer.pieces.chain import render_chain
from snapshot_renderer.pieces.plan import split
from snapshot_renderer.render import pieces, worker
from snapshot_renderer.render.resources import assets_dir, templates_dir
from snapshot_shared.chunking import ChunkPolicy
from snapshot_shared.hashing import content_hash
from snapshot_shared.messages import RenderOptions, SnapshotPayload
from support.samples import SAMPLES

REPO = Path(__file__).resolve().parents[2]
RENDERER = "renderer-service"


def state_at(ref: str, into: Path) -> worker.WorkerState:
    """A render worker's state built from the templates and assets of ``ref``."""
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", ref, f"{RENDERER}/templates", f"{RENDERER}/assets"],
        capture_output=True,
        check=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return worker.build_state(into / RENDERER / "templates", into / RENDERER / "assets")


def use(state: worker.WorkerState) -> None:
    """Make ``state`` the one this process renders with (and drop the pieces' cached sheets,
    which were parsed from the other state's assets)."""
    worker._state = state
    pieces._sheets.clear()


def whole(raw: dict[str, Any], options: dict[str, Any]) -> bytes:
    return worker.render_pdf(raw, options, "snapshot")[0]


def assembled(raw: dict[str, Any], options: dict[str, Any]) -> bytes:
    """The room as chained pieces, stamped and merged (a tiny chunk size, so several seams)."""
    payload, opts = SnapshotPayload.model_validate(raw), RenderOptions.model_validate(options)
    plan = split(payload, opts, ChunkPolicy(max_messages=5))
    rendered = [c.rendered for c in render_chain(plan, "look")]
    stamp = pieces.render_stamp(payload, opts, page_count(rendered))
    return assemble(rendered, stamp, content_hash(raw, options, "snapshot")).pdf


def texts(pdf: bytes) -> list[str]:
    return [page.extract_text() or "" for page in PdfReader(io.BytesIO(pdf)).pages]


def raster(pdf: bytes, dpi: int, tmp: Path, name: str) -> list[Image.Image]:
    path = tmp / f"{name}.pdf"
    path.write_bytes(pdf)
    subprocess.run(["pdftoppm", "-r", str(dpi), str(path), str(tmp / name)], check=True)
    return [Image.open(p).convert("RGB") for p in sorted(tmp.glob(f"{name}-*.ppm"))]


@dataclass
class Compared:
    sample: str
    path: str
    pages: tuple[int, int]
    text_same: bool
    max_diff: list[int]  # per page, the largest difference of one channel (0-255)
    pixels: list[int]  # per page, how many pixels differ at all

    @property
    def same(self) -> bool:
        return self.pages[0] == self.pages[1] and self.text_same


def compare(sample: str, path: str, before: bytes, after: bytes, dpi: int) -> Compared:
    with tempfile.TemporaryDirectory() as tmp:
        a, b = raster(before, dpi, Path(tmp), "before"), raster(after, dpi, Path(tmp), "after")
        diffs = [ImageChops.difference(x, y) for x, y in zip(a, b, strict=False)]
        return Compared(
            sample,
            path,
            (len(a), len(b)),
            texts(before) == texts(after),
            [max(high for _, high in d.getextrema()) for d in diffs],
            [sum(d.convert("L").histogram()[1:]) for d in diffs],
        )


def run(ref: str, dpi: int) -> list[Compared]:
    worker.init_worker("WARNING", "console", warm_up=False)
    here = worker.build_state(templates_dir(), assets_dir())
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        there = state_at(ref, Path(tmp))
        for name, make in SAMPLES.items():
            raw, options = make()
            for path, render in (("whole", whole), ("pieces", assembled)):
                use(there)
                before = render(raw, options)
                use(here)
                after = render(raw, options)
                out.append(compare(name, path, before, after, dpi))
    return out


def main(argv: list[str]) -> int:
    ref = argv[0] if argv else "main"
    dpi = int(argv[1]) if len(argv) > 1 else 100
    results = run(ref, dpi)
    print(f"template and CSS at {ref} (before) vs this tree (after), {dpi} dpi")
    print("| sample | path | pages before/after | text | max pixel diff (per page) | pixels |")
    print("|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r.sample} | {r.path} | {r.pages[0]}/{r.pages[1]} |"
            f" {'same' if r.text_same else 'DIFFERS'} | {max(r.max_diff, default=0)}"
            f" ({' '.join(map(str, r.max_diff))}) | {sum(r.pixels)} |"
        )
    return 0 if all(r.same for r in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
