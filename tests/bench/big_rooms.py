"""Item 5: big rooms, render time and peak renderer RSS, beside a bare render of the same
payload in a ``BarePool`` worker started at the same moment (each gets one of the two cores).
RSS peaks are high-water marks: the render worker's own and the whole renderer's (main process
plus all workers, what a container limit sees). For rooms up to ``TEMPLATE_COST_UP_TO``
messages, the template's cost per message beside bare WeasyPrint's (``bench.template_cost``),
both in one ``BarePool`` worker, one after the other, once the pipeline render is done."""

from __future__ import annotations

import asyncio
from typing import Any

from bench import db, template_cost
from bench.bare import BarePool
from bench.client import ApiClient
from bench.procstat import MIB, RssSampler
from bench.report import Row, ms, ratio
from bench.stack import BenchStack

TEMPLATE_COST_UP_TO = 1000  # a 10,000-message room would add ~1.5 min of renders for one row


async def _request(stack: BenchStack, auth: dict[str, str], room: str, size: int) -> Any:
    client, conn = ApiClient(stack.port, auth), await db.connect(stack.database_url)
    try:
        answer = await client.snapshot(room, {"options": {"title": f"Big room, {size} messages"}})
        return answer, await db.render_input(conn, answer["snapshot_id"])
    finally:
        client.close()
        await conn.close()


async def _finish(stack: BenchStack, task_id: Any, sent: float) -> dict[str, Any]:
    conn = await db.connect(stack.database_url)
    try:
        done = await db.wait_completed(conn, task_id, timeout=1800)
        row = (await db.tasks(conn, [task_id]))[0]
        return {**row, "wall_s": done - sent}
    finally:
        await conn.close()


def measure(
    stack: BenchStack, bare_pool: BarePool, auth: dict[str, str], room: str, size: int
) -> dict[str, Any]:
    """One big-room render through the pipeline and one bare, side by side."""
    with RssSampler(stack.renderer_pid) as rss:
        answer, render_input = asyncio.run(_request(stack, auth, room, size))
        bare = bare_pool.render(render_input)
        task = asyncio.run(_finish(stack, answer["task_id"], answer["sent"]))
        baseline = bare.result()
    cost = None
    if size <= TEMPLATE_COST_UP_TO:
        cost = bare_pool.call(template_cost.compare, *render_input[:2], 1, render_input[2])
    return {
        "size": size,
        "status": task["status"],
        "cache": task["cache"],
        "error_code": task["error_code"],
        "render_s": (task["render_ms"] or 0) / 1000,
        "post_to_completed_s": task["wall_s"],
        "pdf_bytes": task["artifact_bytes"],
        "pages": task["artifact_pages"],
        "worker_peak_rss": rss.peak_process,
        "peaks_by_pid_mb": {
            str(pid): round(peak / MIB) for pid, peak in sorted(rss.peak_by_pid.items())
        },
        "renderer_peak_rss": rss.peak_total,
        "bare": baseline,
        "template_cost": cost.result() if cost else None,
    }


def run(
    stack: BenchStack,
    bare_pool: BarePool,
    auth: dict[str, str],
    rooms: dict[int, str],
    sizes: tuple[int, ...],
) -> list[Row]:
    rows = []
    for size in sizes:
        m = measure(stack, bare_pool, auth, rooms[size], size)
        bare = m["bare"]
        ok = m["status"] == "completed" and m["cache"] == "miss"
        rows.append(
            Row(
                "5",
                f"{size:,}-message room: render time ({m['pages'] or '?'} pages)",
                f"{m['render_s']:.2f} s" if ok else f"{m['status']} ({m['error_code']})",
                f"bare render {bare['seconds']:.2f} s",
                ratio(m["render_s"], bare["seconds"]) if ok else None,
                "",
                None,
                m,
            )
        )
        if m["template_cost"]:
            rows.append(_template_cost_row(size, m["template_cost"]))
        goal = size == 10000
        total = m["renderer_peak_rss"] / MIB
        rows.append(
            Row(
                "5",
                f"{size:,}-message room: peak renderer RSS (all processes)",
                f"{total:.0f} MB (render worker {m['worker_peak_rss'] / MIB:.0f} MB)",
                f"bare render worker {bare['peak_rss_bytes'] / MIB:.0f} MB",
                ratio(m["worker_peak_rss"], bare["peak_rss_bytes"]),
                "≤ 600 MB" if goal else "",
                total <= 600 if goal else None,
            )
        )
    return rows


def _template_cost_row(size: int, cost: dict[str, Any]) -> Row:
    template, bare = cost["template"], cost["bare"]
    return Row(
        "5",
        f"{size:,}-message room: template cost per message ({template['pages']} pages)",
        ms(template["ms_per_message"]),
        f"bare WeasyPrint {ms(bare['ms_per_message'])} ({bare['pages']} pages)",
        cost["ratio"],
        "",
        None,
        cost,
    )
