"""API metrics (prefix ``snapshot_api_``), multiprocess-safe under several uvicorn workers.

``snapshot-api serve`` sets ``PROMETHEUS_MULTIPROC_DIR`` (emptied at start) before any worker
imports this module; each worker then writes its values to files there and ``/metrics`` merges
them: counters and histograms are summed over workers. The gauges are set at scrape time by the
worker that answers (``services.summary.refresh_gauges``), so they use the ``mostrecent`` mode:
the freshest value wins, and a value left behind by a dead worker can never.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)

# No ``*_created`` series: they would double the series count and tell nothing useful here.
disable_created_metrics()  # type: ignore[no-untyped-call]

CACHE_LAYERS = ("memory", "disk", "miss")
QUEUES = ("render.jobs", "render.jobs.dead")  # label values: topology names without the prefix

REQUEST_SECONDS = Histogram(
    "snapshot_api_request_duration_seconds",
    "HTTP request duration by method, route template and status class",
    ["method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
SNAPSHOTS_CREATED = Counter(
    "snapshot_api_snapshots_created_total",
    "Snapshot requests accepted (202); reused=true when an Idempotency-Key matched",
    ["reused"],
)
STATUS_EVENTS = Counter(
    "snapshot_api_status_events_total",
    "Renderer status events consumed, by event and whether they changed the task",
    ["event", "applied"],
)
TASK_LATENCY = Histogram(
    "snapshot_api_task_latency_seconds",
    "Task creation to terminal state, by outcome (completed, failed) and cache layer",
    ["outcome", "cache"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
)
DEAD_LETTERED = Counter(
    "snapshot_api_dead_lettered_jobs_total",
    "Render jobs that came back through the dead-letter queue (their task fails)",
)
OUTBOX_PUBLISHED = Counter(
    "snapshot_api_outbox_published_total", "Render jobs published from the outbox"
)
OUTBOX_BACKLOG = Gauge(
    "snapshot_api_outbox_backlog",
    "Render jobs committed, publishable and not yet published to RabbitMQ",
    multiprocess_mode="mostrecent",
)
OUTBOX_WAITING = Gauge(
    "snapshot_api_outbox_waiting_for_turn",
    "Render jobs held in the outbox while their user has its share of jobs in flight",
    multiprocess_mode="mostrecent",
)
BROKER_UP = Gauge(
    "snapshot_api_broker_up",
    "1 when the API's RabbitMQ connection is up, else 0",
    multiprocess_mode="mostrecent",
)
EVENT_STREAMS = Gauge(
    "snapshot_api_event_streams",
    "Open task event streams (GET /api/v1/tasks/{id}/events), summed over live workers",
    multiprocess_mode="livesum",
)
TASK_EVENTS_RECONNECTS = Counter(
    "snapshot_api_task_events_reconnects_total",
    "Times a worker's LISTEN connection for task events was lost and opened again",
)
QUEUE_MESSAGES = Gauge(
    "snapshot_api_queue_messages",
    "Messages in a RabbitMQ queue (render.jobs, render.jobs.dead), read from the broker",
    ["queue"],
    multiprocess_mode="mostrecent",
)
QUEUE_CONSUMERS = Gauge(
    "snapshot_api_queue_consumers",
    "Consumers of a RabbitMQ queue (for render.jobs: renderer replicas consuming)",
    ["queue"],
    multiprocess_mode="mostrecent",
)
STATUS_EVENTS_RETRIED = Counter(
    "snapshot_api_status_events_unapplied_total",
    "Status and dead-letter events not applied: requeued (retried later) or dead_lettered"
    " (to render.status.dead)",
    ["outcome"],
)
OUTBOX_PUBLISH_FAILED = Counter(
    "snapshot_api_outbox_publish_failures_total",
    "Outbox rows whose publish failed this round (the row stays and is retried)",
)
OUTBOX_PARKED = Counter(
    "snapshot_api_outbox_parked_total",
    "Outbox rows parked after too many failed publishes (their task fails publish_failed)",
)
ARTIFACTS_REFUSED = Counter(
    "snapshot_api_artifacts_refused_total",
    "Stored PDFs refused as a snapshot's artifact, at a completed event or a download, by"
    " reason (missing, symlink, not_regular, unreadable, size, sha256, content_hash, none)",
    ["stage", "reason"],
)
ARTIFACT_REFUSAL_REASONS = (
    "missing",
    "symlink",
    "not_regular",
    "unreadable",
    "size",
    "sha256",
    "content_hash",
    "none",
)
WEBHOOK_ATTEMPTS = Counter(
    "snapshot_api_webhook_attempts_total",
    "Webhook delivery attempts by what they left the delivery: delivered, pending (to be"
    " retried) or failed (given up)",
    ["outcome"],
)
PROBLEMS = Counter("snapshot_api_problems_total", "Problem answers by code", ["code"])


def _initialise_series() -> None:
    """Create the known label sets at 0, so rates and alerts work before the first event."""
    for reused in ("true", "false"):
        SNAPSHOTS_CREATED.labels(reused=reused)
    for event in ("started", "progress", "completed", "failed"):
        for applied in ("true", "false"):
            STATUS_EVENTS.labels(event=event, applied=applied)
    for outcome in ("requeued", "dead_lettered"):
        STATUS_EVENTS_RETRIED.labels(outcome=outcome)
    for stage in ("event", "download"):
        for reason in ARTIFACT_REFUSAL_REASONS:
            ARTIFACTS_REFUSED.labels(stage=stage, reason=reason)
    for outcome in ("delivered", "pending", "failed"):
        WEBHOOK_ATTEMPTS.labels(outcome=outcome)
    for layer in CACHE_LAYERS:
        TASK_LATENCY.labels(outcome="completed", cache=layer)


_initialise_series()


def render_latest() -> tuple[bytes, str]:
    """The text exposition, merged across worker processes when in multiprocess mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
