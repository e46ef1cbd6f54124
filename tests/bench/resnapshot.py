"""Row 11.1 (issue 11): the re-snapshot of a room that grew by 10 messages, through the bench's
stack (API + renderer processes), beside the first, full snapshot of the same room.

A room of ``plan.chunk_room`` messages is created through the API and snapshotted (every piece
a miss: the baseline). Then, ``plan.resnapshot_rounds`` times, 10 messages are appended and the
room is snapshotted again: POST → the task ``completed`` in the database (``bench.db``), seen
on the API's ``task_events`` NOTIFY rather than by items 3–5's 1 ms poll, which took CPU
from the renderer it timed. The renderers' ``snapshot_renderer_pieces_total`` before and after
each snapshot show how many pieces were rendered and how many came from the caches.
"""

from __future__ import annotations

import asyncio
import math
import statistics
from typing import Any

from snapshot_client import Client

from bench import db
from bench.client import ApiClient
from bench.plan import Plan
from bench.report import Row, ms, ratio
from bench.rooms import OWNER, create_room, text_bodies
from bench.solo import delta, scrape
from bench.stack import BenchStack

APPENDED = 10
TARGET_S = 0.25
PIECES = "snapshot_renderer_pieces_total{{cache={}}}"
ASSEMBLY = "snapshot_renderer_assembly_duration_seconds_sum{}"
PIECE_RENDERS = "snapshot_renderer_piece_render_duration_seconds_sum{}"
WANTED = ("snapshot_renderer_pieces_total", ASSEMBLY, PIECE_RENDERS)
PARTS = ("renderer_s", "piece_renders_s", "assembly_s")  # medians shown beside the p50


def _counters(stack: BenchStack) -> dict[str, float]:
    """The pieces and assembly counters of every running renderer of the stack, summed."""
    out: dict[str, float] = {}
    for proc in stack.renderers:
        for name, value in scrape(proc.metrics_port).items():  # type: ignore[attr-defined]
            if name.startswith(WANTED):
                out[name] = out.get(name, 0.0) + value
    return out


async def _snapshot(stack: BenchStack, auth: dict[str, str], room: str) -> dict[str, Any]:
    client, conn = ApiClient(stack.port, auth), await db.connect(stack.database_url)
    try:
        async with db.TaskEvents(conn) as changes:
            answer = await client.snapshot(room, {})
            seen = await changes.wait_terminal(answer["task_id"], timeout=1800)
        task = (await db.tasks(conn, [answer["task_id"]]))[0]
    finally:
        client.close()
        await conn.close()
    return {
        "post_to_completed_s": seen - answer["sent"],
        "status": task["status"],
        "cache": task["cache"],
        "error_code": task["error_code"],
        "pages": task["artifact_pages"],
        "pdf_bytes": task["artifact_bytes"],
        "renderer_s": (task["render_ms"] or 0) / 1000,  # the document job in the renderer
    }


def _measured(stack: BenchStack, auth: dict[str, str], room: str) -> dict[str, Any]:
    before = _counters(stack)
    result = asyncio.run(_snapshot(stack, auth, room))
    after = _counters(stack)
    for cache in ("miss", "memory", "disk"):
        result[f"pieces_{cache}"] = int(delta(before, after, PIECES.format(cache)))
    result["piece_renders_s"] = delta(before, after, PIECE_RENDERS)
    result["assembly_s"] = delta(before, after, ASSEMBLY)
    return result


def run(stack: BenchStack, plan: Plan) -> list[Row]:
    size = plan.chunk_room
    auth = stack.auth(OWNER)
    with Client(stack.base, stack.token(OWNER), timeout=120) as client:
        room = create_room(client, f"Re-snapshot room {size}", text_bodies(size, seed=11))
        first = _measured(stack, auth, room)
        again: list[dict[str, Any]] = []
        for round_ in range(plan.resnapshot_rounds):
            if any(r["status"] != "completed" for r in (first, *again)):
                break  # the row reports the failure; more rounds would only wait longer
            start = size + round_ * APPENDED
            bodies = text_bodies(start + APPENDED, seed=11)[start:]
            client.add_messages(room, [{"body": b, "kind": "message"} for b in bodies])
            again.append(_measured(stack, auth, room))
    ok = first["status"] == "completed" and all(a["status"] == "completed" for a in again)
    seconds = [a["post_to_completed_s"] for a in again] or [math.inf]
    p50 = statistics.median(seconds)
    rendered = sorted({a["pieces_miss"] for a in again})
    reused = sorted({a["pieces_memory"] + a["pieces_disk"] for a in again})
    parts = {k: statistics.median(a[k] for a in again) if again else 0.0 for k in PARTS}
    return [
        Row(
            "11.1",
            f"re-snapshot of a {size:,}-message room after {APPENDED} new messages, POST →"
            f" completed, API + renderer (p50 of {len(again)})",
            f"{ms(1000 * p50)} (max {ms(1000 * max(seconds))}; in the renderer"
            f" {ms(1000 * parts['renderer_s'])}: {'/'.join(map(str, rendered))} pieces"
            f" rendered {ms(1000 * parts['piece_renders_s'])}, {'/'.join(map(str, reused))}"
            f" from cache, assembly {ms(1000 * parts['assembly_s'])})"
            if ok
            else _failed(first, again),
            f"first snapshot {ms(1000 * first['post_to_completed_s'])}"
            f" ({first['pieces_miss']} pieces, {first['pages']} pages)",
            ratio(p50, first["post_to_completed_s"]) if ok else None,
            f"≤ {ms(1000 * TARGET_S)}",
            p50 <= TARGET_S if ok else False,
            {"first": first, "again": again},
        )
    ]


def _failed(first: dict[str, Any], again: list[dict[str, Any]]) -> str:
    bad = next(r for r in (first, *again) if r["status"] != "completed")
    return f"{bad['status']} ({bad['error_code']})"
