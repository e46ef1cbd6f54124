"""The admin metrics summary: what an operator asks before opening Grafana."""

from __future__ import annotations

from typing import Any

import asyncpg

from snapshot_api.db import outbox
from snapshot_api.messaging.broker import Broker

STATUS_COUNTS = "SELECT status, count(*) AS n FROM tasks GROUP BY status"
CACHE_COUNTS = """
SELECT cache, count(*) AS n FROM tasks
WHERE status = 'completed' AND completed_at > now() - make_interval(secs => $1) GROUP BY cache
"""
RENDER_TIMES = """
SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY render_ms) AS p50,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY render_ms) AS p95, count(*) AS n
FROM tasks
WHERE status = 'completed' AND cache = 'miss' AND completed_at > now() - make_interval(secs => $1)
"""


async def summary(pool: asyncpg.Pool, broker: Broker, window_seconds: int) -> dict[str, Any]:
    async with pool.acquire() as conn:
        by_status = {r["status"]: r["n"] for r in await conn.fetch(STATUS_COUNTS)}
        by_cache = {r["cache"]: r["n"] for r in await conn.fetch(CACHE_COUNTS, window_seconds)}
        times = await conn.fetchrow(RENDER_TIMES, window_seconds)
        backlog = await outbox.backlog(conn)
    total = sum(by_cache.values())
    hits = by_cache.get("memory", 0) + by_cache.get("disk", 0)
    return {
        "window_seconds": window_seconds,
        "tasks_by_status": {
            s: by_status.get(s, 0) for s in ("queued", "rendering", "completed", "failed")
        },
        "cache": {
            "completed": total,
            "hit_ratio": hits / total if total else None,
            "by_layer": {
                layer: {
                    "count": by_cache.get(layer, 0),
                    "ratio": by_cache.get(layer, 0) / total if total else None,
                }
                for layer in ("memory", "disk", "miss")
            },
        },
        "render_ms": {"p50": times["p50"], "p95": times["p95"], "renders": times["n"]},
        "outbox_backlog": backlog,
        "queues": await _queues(broker),
    }


async def _queues(broker: Broker) -> dict[str, Any]:
    """Depth and consumers of the job queue and the dead-letter queue, read from the broker."""
    if broker.connection is None or not broker.is_up:
        return {"broker": "down"}
    out: dict[str, Any] = {"broker": "up"}
    channel = await broker.connection.channel()
    try:
        for label, name in (
            ("jobs", broker.topology.jobs_queue),
            ("dead_lettered", broker.topology.dead_queue),
        ):
            q = await channel.declare_queue(name, passive=True)
            result = q.declaration_result
            out[label] = {"messages": result.message_count, "consumers": result.consumer_count}
    finally:
        await channel.close()
    return out
