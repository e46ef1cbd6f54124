"""Rows 11.4, 11.5 and 11.6 (issue 11): first renders, chunked beside whole, on renderer
replicas of the bench's own (``bench.solo``), and the helpers ``bench.chunks_big`` shares.

A chunked renderer (the defaults: rooms of 200+ messages in pieces) and a whole one
(``SNAPSHOT_RENDERER_PIECES_MIN_MESSAGES`` = 10⁹), 2 workers each, are started together on
fresh prefixes and stores. ``plan.chunk_rounds`` rooms of ``plan.chunk_room`` messages
(distinct bodies, so every render is a miss) go to both, the order alternating; then a CJK
room. Side by side: the first render's time (publish → ``completed``), the PDF's size and
pages; and the assembly's seconds per page from the chunked renderer's
``snapshot_renderer_assembly_duration_seconds``.

The renderer's default per-snapshot limits (5,000 messages, 3 MiB weight) refuse the big rooms
of ``bench.chunks_big``; every renderer of these rows runs with
``SNAPSHOT_RENDERER_MAX_SNAPSHOT_MESSAGES`` = 100,000 and ``SNAPSHOT_RENDERER_MAX_SNAPSHOT_WEIGHT``
= 64 MiB (what the API's lifted limits will allow), and otherwise the default budgets.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Callable
from typing import Any

from bench.payloads import render_job, room_payload
from bench.plan import Plan
from bench.procstat import MIB, system_busy
from bench.report import Row, ms, ratio
from bench.rooms import cjk_bodies, text_bodies
from bench.solo import Outcome, SoloRenderer, delta, running

LIMITS = {
    "SNAPSHOT_RENDERER_MAX_SNAPSHOT_MESSAGES": "100000",
    "SNAPSHOT_RENDERER_MAX_SNAPSHOT_WEIGHT": str(64 * MIB),
}
WHOLE = {**LIMITS, "SNAPSHOT_RENDERER_PIECES_MIN_MESSAGES": str(10**9)}
ASSEMBLY = "snapshot_renderer_assembly_duration_seconds_{}{{}}"
CJK_CHARS = 40
Say = Callable[[str], None]


def measure(renderer: SoloRenderer, payload: dict[str, Any], title: str) -> dict[str, Any]:
    """One job, its outcome and what the renderer's metrics say it cost."""
    before, busy = renderer.metrics(), system_busy()
    outcome = renderer.render(render_job(payload, title))
    after, (busy_end, total_end) = renderer.metrics(), system_busy()
    result: dict[str, Any] = {
        "outcome": outcome,
        **outcome.summary(),
        "renderer": renderer.name,
        "load_avg": round(os.getloadavg()[0], 2),
        # The whole machine's CPU use meanwhile (ours and every other process's).
        "machine_busy_pct": round(100 * (busy_end - busy[0]) / (total_end - busy[1]), 1),
        "assembly_s": delta(before, after, ASSEMBLY.format("sum")),
        "assemblies": int(delta(before, after, ASSEMBLY.format("count"))),
    }
    for cache in ("miss", "memory", "disk"):
        name = f"snapshot_renderer_pieces_total{{cache={cache}}}"
        result[f"pieces_{cache}"] = int(delta(before, after, name))
    if not outcome.ok:
        result["log_tail"] = renderer.log_tail()
    return result


def plain(result: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if k != "outcome"}


def shown(result: dict[str, Any], text: str) -> str:
    outcome: Outcome = result["outcome"]
    return text if outcome.ok else f"{result['status']} ({result['error']})"


# --- 11.4, 11.5 (1,000 messages), 11.6 ------------------------------------------------------
def first_renders(plan: Plan, say: Say) -> list[Row]:
    n = plan.chunk_room
    chunked = SoloRenderer("chunked", 2, LIMITS)
    whole = SoloRenderer("whole", 2, WHOLE)
    runs: dict[str, list[dict[str, Any]]] = {"chunked": [], "whole": []}
    with running(chunked, whole):
        for r in range(plan.chunk_rounds):
            payload = room_payload(text_bodies(n, seed=100 + r), f"First render {r}", seed=r + 1)
            order = (whole, chunked) if r % 2 == 0 else (chunked, whole)
            for renderer in order:
                say(f"11.4: {n:,} messages, round {r + 1} of {plan.chunk_rounds}, {renderer.name}")
                runs[renderer.name].append(measure(renderer, payload, f"Round {r}"))
        say(f"11.6: a CJK room of {plan.cjk_chunk_room} messages, whole and chunked")
        cjk = room_payload(cjk_bodies(plan.cjk_chunk_room, CJK_CHARS), "CJK room", seed=99)
        cjk_runs = {r.name: measure(r, cjk, "CJK") for r in (whole, chunked)}
    return [
        _first_render_row(n, runs),
        assembly_row(f"{n:,}-message room", runs["chunked"]),
        _size_row(f"Latin, {n:,} messages", runs["chunked"][0], runs["whole"][0]),
        _size_row(
            f"CJK, {plan.cjk_chunk_room} messages of {CJK_CHARS} ideographs",
            cjk_runs["chunked"],
            cjk_runs["whole"],
        ),
    ]


def _first_render_row(n: int, runs: dict[str, list[dict[str, Any]]]) -> Row:
    ok = all(r["outcome"].ok for rs in runs.values() for r in rs)
    med = {k: statistics.median(r["wall_s"] for r in rs) for k, rs in runs.items()}
    c, w = runs["chunked"][0], runs["whole"][0]
    return Row(
        "11.4",
        f"first render of a {n:,}-message room, chunked vs whole, publish → completed"
        f" (p50 of {len(runs['whole'])})",
        f"chunked {ms(1000 * med['chunked'])} ({c['pieces_miss']} pieces, {c['pages']} pages)"
        if ok
        else "failed",
        f"whole {ms(1000 * med['whole'])} ({w['pages']} pages)",
        ratio(med["chunked"], med["whole"]) if ok else None,
        "≤ 1.1×",
        ok and med["chunked"] <= 1.1 * med["whole"],
        {k: [plain(r) for r in rs] for k, rs in runs.items()},
    )


def assembly_row(what: str, results: list[dict[str, Any]]) -> Row:
    good = [r for r in results if r["outcome"].ok and r["assemblies"] and r["pages"]]
    if not good:
        return Row("11.5", f"assembly per page, {what}", "n/a", target="≤ 2 ms", met=False)
    per_page = statistics.median(1000 * r["assembly_s"] / r["pages"] for r in good)
    seconds = statistics.median(r["assembly_s"] for r in good)
    pages = good[0]["pages"]
    return Row(
        "11.5",
        f"assembly (merge + stamp + outline) per page, {what}"
        + (f" (p50 of {len(good)})" if len(good) > 1 else ""),
        ms(per_page),
        f"{ms(1000 * seconds)} for {pages:,} pages",
        None,
        "≤ 2 ms",
        per_page <= 2.0,
        {"per_page_ms": per_page, "runs": len(good)},
    )


def _size_row(what: str, chunked: dict[str, Any], whole: dict[str, Any]) -> Row:
    ok = chunked["outcome"].ok and whole["outcome"].ok
    c, w = chunked["pdf_bytes"], whole["pdf_bytes"]
    return Row(
        "11.6",
        f"PDF size chunked vs whole, {what}",
        shown(chunked, f"{c / 2**10:,.0f} KiB ({chunked['pages']} pages)"),
        shown(whole, f"whole {w / 2**10:,.0f} KiB ({whole['pages']} pages)"),
        ratio(c, w) if ok else None,
        "≤ 1.3×",
        ok and c <= 1.3 * w,
        {"chunked": plain(chunked), "whole": plain(whole)},
    )
