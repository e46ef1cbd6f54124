"""API metrics (prefix ``snapshot_api_``), multiprocess-safe under several uvicorn workers."""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

REQUEST_SECONDS = Histogram(
    "snapshot_api_request_duration_seconds",
    "HTTP request duration by method, route template and status class",
    ["method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
SNAPSHOTS_CREATED = Counter(
    "snapshot_api_snapshots_created_total", "Snapshots accepted (202)", ["reused"]
)
STATUS_EVENTS = Counter(
    "snapshot_api_status_events_total", "Status events consumed", ["event", "applied"]
)
TASK_LATENCY = Histogram(
    "snapshot_api_task_latency_seconds",
    "Task creation to terminal state, by outcome and cache layer",
    ["outcome", "cache"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
OUTBOX_PUBLISHED = Counter(
    "snapshot_api_outbox_published_total", "Render jobs published from the outbox"
)
OUTBOX_BACKLOG = Gauge(
    "snapshot_api_outbox_backlog",
    "Render jobs waiting in the outbox, as last seen by a relay",
    multiprocess_mode="max",
)
PROBLEMS = Counter("snapshot_api_problems_total", "Problem answers by code", ["code"])


def render_latest() -> tuple[bytes, str]:
    """The text exposition, merged across worker processes when in multiprocess mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
