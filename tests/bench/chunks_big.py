"""Rows 11.2, 11.3 and 11.5 for big rooms (issue 11): render workers in parallel, peak memory
of one render worker, assembly per page, on renderer replicas of the bench's own
(``bench.solo``), each a fresh process on a fresh prefix and store, started together.

- 11.2: a ``plan.parallel_room``-message room on three renderers, one after another: 1 worker;
  2 workers with ``SNAPSHOT_RENDERER_USER_CONCURRENCY`` = 2 (one user may fill both workers);
  2 workers at the default user concurrency (half the workers: 1, fair rendering). Wall time
  from the publish to the ``completed`` event; the speed-up is 1 worker's time ÷ 2 workers'.
- 11.3: the highest resident set of one render worker (``bench.solo.WorkerRss``) during the
  2-worker render above, and during a ``plan.huge_room`` room of short messages on a fourth
  renderer (2 workers, user concurrency 2, the default budgets: 120 s and 1 GiB a render,
  20,000 pages, 300 s of piece wait); its wall time and pages.
- 11.5: assembly seconds per page of both rooms.
"""

from __future__ import annotations

from typing import Any

from bench.chunks_first import LIMITS, Say, assembly_row, measure, plain, shown
from bench.payloads import room_payload, short_bodies
from bench.plan import Plan
from bench.procstat import MIB
from bench.report import Row, ms, ratio
from bench.rooms import text_bodies
from bench.solo import SoloRenderer, running

ALL_WORKERS = {**LIMITS, "SNAPSHOT_RENDERER_USER_CONCURRENCY": "2"}
RSS_TARGET_MB = 300


def run(plan: Plan, say: Say) -> list[Row]:
    n, huge_n = plan.parallel_room, plan.huge_room
    one = SoloRenderer("one", 1, LIMITS)
    two = SoloRenderer("two", 2, ALL_WORKERS)
    fair = SoloRenderer("fair", 2, LIMITS)
    huge = SoloRenderer("huge", 2, ALL_WORKERS)
    payload = room_payload(text_bodies(n, seed=200), f"Parallel room {n}", seed=200)
    results: dict[str, dict[str, Any]] = {}
    with running(one, two, fair, huge):
        for renderer, what in ((one, "1 worker"), (two, "2 workers"), (fair, "2 workers, fair")):
            say(f"11.2: {n:,} messages, {what}")
            results[renderer.name] = measure(renderer, payload, "Parallel")
        say(f"11.3: {huge_n:,} short messages, 2 workers")
        big = measure(
            huge, room_payload(short_bodies(huge_n), f"Huge room {huge_n}", seed=300), "Huge"
        )
    return [
        _speedup_row(n, results["one"], results["two"], "user concurrency 2", True),
        _speedup_row(n, results["one"], results["fair"], "user concurrency 1 (default)", False),
        _rss_row(f"{n:,}-message room, 2 workers", results["two"], results["one"]),
        _rss_row(f"{huge_n:,} short messages, 2 workers", big, None),
        _huge_row(huge_n, big),
        assembly_row(f"{n:,}-message room", [results["two"]]),
        assembly_row(f"{huge_n:,} short messages", [big]),
    ]


def _speedup_row(n: int, one: dict[str, Any], two: dict[str, Any], how: str, goal: bool) -> Row:
    ok = one["outcome"].ok and two["outcome"].ok
    speedup = ratio(one["wall_s"], two["wall_s"]) if ok else None
    return Row(
        "11.2",
        f"{n:,}-message room, 2 render workers vs 1, {how}: speed-up (1 worker ÷ 2)",
        shown(two, f"2 workers {ms(1000 * two['wall_s'])} ({_cpu(two)})"),
        shown(one, f"1 worker {ms(1000 * one['wall_s'])} ({_cpu(one)})"),
        speedup,
        "≥ 1.8×" if goal else "",
        (speedup is not None and speedup >= 1.8) if goal else None,
        {"one": plain(one), "two": plain(two)},
    )


def _cpu(result: dict[str, Any]) -> str:
    """How much of the 2 cores the run had: its workers' CPU ÷ wall time, and the machine's."""
    cpu = result["cpu_seconds"]
    cores = cpu["workers"] / result["wall_s"] if result["wall_s"] else 0.0
    return (
        f"workers used {cores:.2f} cores, renderer process {cpu['renderer']:.1f} s CPU;"
        f" machine {result['machine_busy_pct']:.0f}% busy"
    )


def _rss_row(what: str, result: dict[str, Any], other: dict[str, Any] | None) -> Row:
    peak = result["worker_peak_rss_mb"]
    phases = result["worker_peak_rss_mb_by_phase"]
    parts = [
        f"{phase} {mb} MB" for phase, mb in phases.items() if phase in ("rendering", "assembling")
    ]
    if other is not None:
        parts.append(f"1-worker run {other['worker_peak_rss_mb']} MB")
    parts.append(f"renderer process {result['renderer_main_peak_rss_mb']} MB")
    return Row(
        "11.3",
        f"peak RSS of one render worker, {what}",
        shown(result, f"{peak} MB"),
        "sampled: " + ", ".join(parts),
        None,
        f"≤ {RSS_TARGET_MB} MB",
        result["outcome"].ok and peak <= RSS_TARGET_MB,
        {"result": plain(result), "renderer_main_peak_rss_mb": result["renderer_main_peak_rss_mb"]},
    )


def _huge_row(n: int, result: dict[str, Any]) -> Row:
    return Row(
        "11.3",
        f"{n:,} short messages, default budgets, 2 workers: publish → completed",
        shown(result, f"{ms(1000 * result['wall_s'])}, {result['pages']:,} pages"),
        f"{result['pieces_miss']} pieces, PDF {result['pdf_bytes'] / MIB:.1f} MiB; {_cpu(result)}",
        None,
        "completes",
        result["outcome"].ok,
        plain(result),
    )
