"""Operational state read from PostgreSQL and RabbitMQ: the admin summary (what an operator asks
before opening Grafana) and the gauges that ``/metrics`` refreshes at scrape time."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
from dataclasses import dataclass
from typing import Any

import asyncpg
from aio_pika.exceptions import ChannelNotFoundEntity

from snapshot_api.db import outbox
from snapshot_api.errors import InvalidRequest
from snapshot_api.messaging.broker import Broker
from snapshot_api.metrics import (
    BROKER_UP,
    CACHE_LAYERS,
    OUTBOX_BACKLOG,
    OUTBOX_WAITING,
    QUEUE_CONSUMERS,
    QUEUE_MESSAGES,
    QUEUES,
)

log = logging.getLogger(__name__)
STATUSES = ("queued", "rendering", "completed", "failed")
MIN_WINDOW, MAX_WINDOW = 60, 30 * 86400
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
SCRAPE_TIMEOUT = 2.0

STATUS_COUNTS = "SELECT status, count(*) AS n FROM tasks GROUP BY status"
CACHE_COUNTS = """
SELECT cache, count(*) AS n FROM tasks
WHERE status = 'completed' AND completed_at > now() - make_interval(secs => $1) GROUP BY cache
"""
FAILURE_COUNTS = """
SELECT coalesce(error_code, 'unknown') AS code, count(*) AS n,
       count(*) FILTER (WHERE phase = 'dead_lettered'
                        OR error_code = 'delivery_limit_exceeded') AS dead_lettered
FROM tasks
WHERE status = 'failed' AND completed_at > now() - make_interval(secs => $1) GROUP BY 1
"""
RENDER_TIMES = """
SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY render_ms) AS p50,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY render_ms) AS p95, count(*) AS n
FROM tasks
WHERE status = 'completed' AND cache = 'miss' AND render_ms IS NOT NULL
  AND completed_at > now() - make_interval(secs => $1)
"""


@dataclass(frozen=True)
class QueueStats:
    name: str
    messages: int
    consumers: int

    def view(self) -> dict[str, Any]:
        return {"name": self.name, "messages": self.messages, "consumers": self.consumers}


def parse_window(text: str) -> int:
    """``3600``, ``90s``, ``15m``, ``1h`` or ``7d`` as seconds, within 1 minute and 30 days."""
    match = re.fullmatch(r"([0-9]{1,8})([smhd]?)", text.strip())
    if match is None:
        raise InvalidRequest("window: use seconds or a duration like 15m, 1h, 7d")
    seconds = int(match.group(1)) * _UNITS[match.group(2)]
    if not MIN_WINDOW <= seconds <= MAX_WINDOW:
        raise InvalidRequest(f"window: must lie between {MIN_WINDOW} s and {MAX_WINDOW} s")
    return seconds


async def queue_stats(broker: Broker) -> dict[str, QueueStats] | None:
    """Depth and consumers of ``render.jobs`` and ``render.jobs.dead``; ``None`` when the broker
    is down, zero for a queue not declared yet (the renderers declare ``render.jobs``). Keys are
    the topology names without the queue prefix."""
    if broker.connection is None or not broker.is_up:
        return None
    topology = broker.topology
    out: dict[str, QueueStats] = {}
    for name in (topology.jobs_queue, topology.dead_queue):
        # A channel of its own: a failed passive declare closes the channel it ran on.
        channel = await broker.connection.channel()
        try:
            result = (await channel.declare_queue(name, passive=True)).declaration_result
            stats = QueueStats(name, result.message_count or 0, result.consumer_count or 0)
        except ChannelNotFoundEntity:  # render.jobs before any renderer declared it
            stats = QueueStats(name, 0, 0)
        finally:
            with contextlib.suppress(Exception):
                await channel.close()
        out[name.removeprefix(topology.prefix)] = stats
    return out


async def refresh_gauges(pool: asyncpg.Pool, broker: Broker, per_user: int = 0) -> None:
    """Set the scrape-time gauges: outbox backlog, broker up, queue depth and consumers.

    Bounded in time; a value that cannot be read is reported as NaN (unknown), never as a
    stale number that looks current.
    """
    try:
        async with asyncio.timeout(SCRAPE_TIMEOUT):
            backlog, waiting = await outbox.backlog(pool, per_user)
            OUTBOX_BACKLOG.set(backlog)
            OUTBOX_WAITING.set(waiting)
    except Exception as exc:  # noqa: BLE001 - a scrape must answer even with the database down
        log.debug("outbox backlog unavailable at scrape: %s", exc)
        OUTBOX_BACKLOG.set(math.nan)
        OUTBOX_WAITING.set(math.nan)
    stats: dict[str, QueueStats] | None = None
    try:
        async with asyncio.timeout(SCRAPE_TIMEOUT):
            stats = await queue_stats(broker)
    except Exception as exc:  # noqa: BLE001 - same for the broker
        log.debug("queue statistics unavailable at scrape: %s", exc)
    BROKER_UP.set(1 if broker.is_up else 0)
    for label in QUEUES:
        found = stats.get(label) if stats else None
        QUEUE_MESSAGES.labels(queue=label).set(found.messages if found else math.nan)
        QUEUE_CONSUMERS.labels(queue=label).set(found.consumers if found else math.nan)


def _ratio(part: int, total: int) -> float | None:
    return part / total if total else None


async def summary(
    pool: asyncpg.Pool, broker: Broker, window_seconds: int, per_user: int = 0
) -> dict[str, Any]:
    """Counts by status, cache hit ratios, render percentiles, queues, outbox, dead letters."""
    async with pool.acquire() as conn:
        by_status = {r["status"]: r["n"] for r in await conn.fetch(STATUS_COUNTS)}
        by_cache = {r["cache"]: r["n"] for r in await conn.fetch(CACHE_COUNTS, window_seconds)}
        failures = await conn.fetch(FAILURE_COUNTS, window_seconds)
        times = await conn.fetchrow(RENDER_TIMES, window_seconds)
        backlog, waiting = await outbox.backlog(conn, per_user)
    try:
        queues = await queue_stats(broker)
    except Exception as exc:  # noqa: BLE001 - the summary still answers with the broker unwell
        log.warning("queue statistics unavailable: %s", exc)
        queues = None
    completed = sum(by_cache.values())
    hits = by_cache.get("memory", 0) + by_cache.get("disk", 0)
    jobs = queues.get("render.jobs") if queues else None
    dead = queues.get("render.jobs.dead") if queues else None
    return {
        "window_seconds": window_seconds,
        "tasks_by_status": {s: by_status.get(s, 0) for s in STATUSES},
        "cache": {
            "completed": completed,
            "hit_ratio": _ratio(hits, completed),
            "by_layer": {
                layer: {
                    "count": by_cache.get(layer, 0),
                    "ratio": _ratio(by_cache.get(layer, 0), completed),
                }
                for layer in CACHE_LAYERS
            },
        },
        "failed_by_code": {r["code"]: r["n"] for r in failures},
        "render_ms": {"p50": times["p50"], "p95": times["p95"], "renders": times["n"]},
        "outbox_backlog": backlog,
        "outbox_waiting_for_turn": waiting,
        "broker": "up" if broker.is_up else "down",
        "render_jobs": jobs.view() if jobs else None,
        "dead_letter": {
            "jobs": sum(r["dead_lettered"] for r in failures),
            "queue": dead.view() if dead else None,
        },
    }
