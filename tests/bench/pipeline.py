"""Item 3: pipeline efficiency, unique snapshots per second end to end (POST → completed) with
R render workers, beside the bare template + WeasyPrint loop in R processes on the same
documents, in the same run."""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

from bench import db
from bench.bare import BarePool, RenderInput
from bench.client import ApiClient
from bench.report import Row


async def _pipeline(
    port: int, auth: dict[str, str], dsn: str, room: str, titles: list[str]
) -> tuple[dict[str, Any], list[RenderInput]]:
    client, conn = ApiClient(port, auth), await db.connect(dsn)
    try:
        started = time.perf_counter()
        accepted = [await client.snapshot(room, {"options": {"title": t}}) for t in titles]
        task_ids = [a["task_id"] for a in accepted]
        finished = await db.wait_all(conn, task_ids, timeout=60 + 30 * len(titles))
        rows = await db.tasks(conn, task_ids)
        inputs = [await db.render_input(conn, a["snapshot_id"]) for a in accepted]
    finally:
        client.close()
        await conn.close()
    return {
        "docs": len(titles),
        "wall_s": finished - started,
        "caches": sorted({str(r["cache"]) for r in rows}),
        "failed": sum(r["status"] != "completed" for r in rows),
        "render_ms": [float(r["render_ms"] or 0) for r in rows],
    }, inputs


def run(
    port: int,
    auth: dict[str, str],
    dsn: str,
    room: str,
    docs: int,
    rounds: int,
    bare_pool: BarePool,
) -> list[Row]:
    """Rounds of pipeline then bare on fresh documents (A B A B ...), so a slow spell on the
    shared machine is less likely to fall on one side only."""
    r = bare_pool.processes
    pipes, bares = [], []
    for round_ in range(rounds):
        titles = [f"Pipeline document {round_}.{i}" for i in range(max(1, docs // rounds))]
        pipe, inputs = asyncio.run(_pipeline(port, auth, dsn, room, titles))
        pipes.append(pipe)
        bares.append(bare_pool.loop(inputs))
    total = sum(p["docs"] for p in pipes)
    pipe_rate = total / sum(p["wall_s"] for p in pipes)
    bare_rate = total / sum(b["wall_s"] for b in bares)
    efficiency = pipe_rate / bare_rate
    render_p50 = statistics.median([ms for p in pipes for ms in p["render_ms"]]) / 1000
    bare_p50 = statistics.median([sec for b in bares for sec in b["render_s"]])
    failed = sum(p["failed"] for p in pipes)
    return [
        Row(
            "3",
            f"pipeline: {total} unique 100-message snapshot(s), POST → completed, R={r}",
            f"{pipe_rate:.2f}/s (render p50 {render_p50:.2f} s)",
            f"bare WeasyPrint loop, R={r} processes: {bare_rate:.2f}/s "
            f"(render p50 {bare_p50:.2f} s)",
            efficiency,
            "efficiency ≥ 0.9",
            efficiency >= 0.9 and failed == 0,
            {"pipeline": pipes, "bare": bares},
        )
    ]
