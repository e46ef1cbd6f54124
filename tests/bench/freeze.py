"""Item 2: the freeze cost, POST latency for rooms of growing size → cost per message.

Baseline: the API's own freeze query run by the bench against the same rooms (PostgreSQL's
share of the work), so the ratio shows what the API adds per message on top of reading it.
"""

from __future__ import annotations

import asyncio
import statistics
from typing import Any
from uuid import UUID

from bench import db
from bench.api_load import Endpoints, LoadRun
from bench.report import Row, ms, ratio


async def _raw_reads(dsn: str, room: str, size: int, samples: int) -> list[float]:
    conn = await db.connect(dsn)
    try:
        await db.raw_freeze_seconds(conn, UUID(room), size + 1)  # warm the cache
        return [await db.raw_freeze_seconds(conn, UUID(room), size + 1) for _ in range(samples)]
    finally:
        await conn.close()


def _slope(points: list[tuple[int, float]]) -> float:
    """Least-squares µs per message through (messages, ms) points."""
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    num = sum((x - mx) * (y - my) for x, y in points)
    den = sum((x - mx) ** 2 for x in xs)
    return 1000 * num / den if den else 0.0


def run(lr: LoadRun, rooms: dict[int, str], auth: dict[str, str], dsn: str) -> list[Row]:
    rows: list[Row] = []
    api_points, raw_points = [], []
    data: dict[str, Any] = {}
    for size, samples in zip(lr.plan.freeze_sizes, lr.plan.freeze_samples, strict=True):
        ep = Endpoints.for_room(rooms[size], auth)
        lr.go(f"2.warm@{size}", ep.post, mode="closed", concurrency=1, count=1, timeout=120)
        post = lr.go(
            f"2.post@{size}", ep.post, mode="closed", concurrency=1, count=samples, timeout=120
        )
        raw = asyncio.run(_raw_reads(dsn, rooms[size], size, samples))
        raw_p50 = statistics.median(raw) * 1000
        api_points.append((size, post["p50_ms"]))
        raw_points.append((size, raw_p50))
        data[str(size)] = {"post": post, "raw_read_p50_ms": raw_p50}
        rows.append(
            Row(
                "2",
                f"POST latency, {size:,}-message room (p50, 1 client)",
                f"{ms(post['p50_ms'])} (p99 {ms(post['p99_ms'])})",
                f"raw freeze query {ms(raw_p50)}",
                ratio(post["p50_ms"], raw_p50),
            )
        )
    per_msg, raw_per_msg = _slope(api_points), _slope(raw_points)
    rows.append(
        Row(
            "2",
            "freeze cost per message (slope of the p50s)",
            f"{per_msg:.1f} µs",
            f"raw freeze query {raw_per_msg:.2f} µs",
            ratio(per_msg, raw_per_msg),
            "≤ 20 µs per message",
            per_msg <= 20,
            {"sizes": data, "api_points": api_points, "raw_points": raw_points},
        )
    )
    return rows
