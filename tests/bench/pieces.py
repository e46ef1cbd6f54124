"""Pieces (issue 11, first landing): a room rendered whole beside the same room rendered as
chained pieces and assembled, and the re-render after 10 new messages, in one process set up
like a render worker (``worker.init_worker``), side by side so that the ratios hold on a noisy
machine.

Standalone, from ``tests/``: ``python -m bench.pieces [messages] [repeats]`` (default 2,000
and 3). Pieces run one after another here (no fan-out yet), so "pieces" is the sequential cost
of the chain; "append" renders only what changed (the cover, the tail), with every other piece
from a warm cache, then stamps and assembles. Medians of ``repeats`` alternating runs.
"""

from __future__ import annotations

import io
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import pikepdf
from snapshot_renderer.assembly.document import assemble
from snapshot_renderer.assembly.merge import page_count
from snapshot_renderer.pieces.chain import render_chain
from snapshot_renderer.pieces.plan import split
from snapshot_renderer.render import worker
from snapshot_renderer.render.pieces import RenderedPiece, render_stamp
from snapshot_shared.hashing import content_hash
from snapshot_shared.messages import RenderOptions, SnapshotPayload

from bench.template_cost import sample_payload

FINGERPRINT = "b" * 64
APPENDED = 10


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def font_bytes(pdf: bytes) -> tuple[int, int]:
    """The embedded font programs of ``pdf``: how many, and their bytes as stored."""
    doc = pikepdf.open(io.BytesIO(pdf))
    programs = {
        obj.objgen: len(obj.read_raw_bytes())
        for obj in doc.objects
        if isinstance(obj, pikepdf.Stream) and "/Length1" in obj
    }
    return len(programs), sum(programs.values())


def pieces_run(
    raw: dict[str, Any], cache: dict[str, RenderedPiece] | None = None
) -> dict[str, Any]:
    """Render the chain (from ``cache`` where it can), the stamp, and assemble: each timed."""
    payload, options = SnapshotPayload.model_validate(raw), RenderOptions()
    plan = split(payload, options)
    render_s, chain = _timed(lambda: render_chain(plan, FINGERPRINT, cache))
    rendered = [c.rendered for c in chain]
    stamp_s, stamp = _timed(lambda: render_stamp(payload, options, page_count(rendered)))
    digest = content_hash(raw, {}, "snapshot")
    assemble_s, out = _timed(lambda: assemble(rendered, stamp, digest))
    return {
        "render_s": render_s,
        "stamp_s": stamp_s,
        "assemble_s": assemble_s,
        "total_s": render_s + stamp_s + assemble_s,
        "pieces": len(chain),
        "rendered": sum(c.fresh for c in chain),
        "pages": out.pages,
        "bytes": len(out.pdf),
        "pdf": out.pdf,
    }


def whole_run(raw: dict[str, Any]) -> dict[str, Any]:
    seconds, (pdf, pages) = _timed(lambda: worker.render_pdf(raw, {}, "snapshot"))
    return {"total_s": seconds, "pages": pages, "bytes": len(pdf), "pdf": pdf}


def measure(count: int, repeats: int) -> dict[str, Any]:
    base = sample_payload(count + APPENDED)
    room = dict(
        base, messages=base["messages"][:count], as_of=base["messages"][count - 1]["created_at"]
    )
    grown = base
    runs: dict[str, list[dict[str, Any]]] = {
        k: [] for k in ("whole", "pieces", "whole+10", "append")
    }
    for _ in range(repeats):
        runs["whole"].append(whole_run(room))
        cache: dict[str, RenderedPiece] = {}
        runs["pieces"].append(pieces_run(room, cache))
        runs["whole+10"].append(whole_run(grown))
        runs["append"].append(pieces_run(grown, cache))
    med = {
        name: {key: statistics.median(r[key] for r in rs) for key in rs[0] if key != "pdf"}
        for name, rs in runs.items()
    }
    med["whole"]["fonts"] = font_bytes(runs["whole"][0]["pdf"])
    med["pieces"]["fonts"] = font_bytes(runs["pieces"][0]["pdf"])
    return med


def main(argv: list[str]) -> int:
    count = int(argv[0]) if argv else 2000
    repeats = int(argv[1]) if len(argv) > 1 else 3
    worker.init_worker("WARNING", "console")
    m = measure(count, repeats)
    w, p, w10, a = m["whole"], m["pieces"], m["whole+10"], m["append"]
    print(f"pieces bench: {count} messages, medians of {repeats} runs, one process")
    print(f"  whole render            {w['total_s']:7.3f} s  {w['pages']:4.0f} pages", end="")
    print(f"  {w['bytes']:9.0f} B")
    print(
        f"  pieces in sequence      {p['total_s']:7.3f} s  {p['pages']:4.0f} pages"
        f"  {p['bytes']:9.0f} B"
        f"  (render {p['render_s']:.3f} s of {p['pieces']:.0f} pieces, stamp {p['stamp_s']:.3f} s,"
        f" assemble {p['assemble_s']:.3f} s = {1000 * p['assemble_s'] / p['pages']:.2f} ms/page)"
    )
    print(f"  whole render +{APPENDED}        {w10['total_s']:7.3f} s  {w10['pages']:4.0f} pages")
    print(
        f"  append: changed pieces  {a['total_s']:7.3f} s  {a['pages']:4.0f} pages"
        f"  (rendered {a['rendered']:.0f} of {a['pieces']:.0f} pieces in {a['render_s']:.3f} s,"
        f" stamp {a['stamp_s']:.3f} s, assemble {a['assemble_s']:.3f} s)"
    )
    print(f"  pieces ÷ whole (first render)       {p['total_s'] / w['total_s']:.2f}")
    print(f"  append ÷ whole +{APPENDED} (re-render)       {a['total_s'] / w10['total_s']:.2f}")
    print(f"  PDF size pieces ÷ whole             {p['bytes'] / w['bytes']:.2f}")
    (wn, wb), (pn, pb) = w["fonts"], p["fonts"]
    print(f"  font programs: whole {wn} ({wb} B), pieces {pn} ({pb} B)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
