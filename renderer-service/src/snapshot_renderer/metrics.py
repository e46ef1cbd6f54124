"""Prometheus metrics of the renderer: base units, ``snapshot_renderer_`` prefix, few labels.

Metric objects are definitions, not clients: they live in the default registry of the process
that serves ``/metrics`` (the event-loop process). Worker processes only return numbers.

The renderer never uses the client's multiprocess mode: if ``PROMETHEUS_MULTIPROC_DIR`` is set
in an environment shared with the API, it is dropped before ``prometheus_client`` is imported
(the client reads it at import time); otherwise this process would write its values into the
API's directory and they would show up, labelled by pid, in the API's ``/metrics``. This module
is the only one of the renderer that imports ``prometheus_client``.
"""

from __future__ import annotations

import os

for _variable in ("PROMETHEUS_MULTIPROC_DIR", "prometheus_multiproc_dir"):
    os.environ.pop(_variable, None)

from prometheus_client import (  # noqa: E402 - after the environment is cleaned, on purpose
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

# No ``*_created`` series: they would double the series count and tell nothing useful here.
disable_created_metrics()  # type: ignore[no-untyped-call]

RENDER_SECONDS = Histogram(
    "snapshot_renderer_render_duration_seconds",
    "Wall-clock time of one PDF render in a worker process (cache misses only).",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60),
)
CACHE_REQUESTS = Counter(
    "snapshot_renderer_cache_requests_total",
    "Cache look-ups by layer (memory, disk) and result (hit, miss, corrupt).",
    ["layer", "result"],
)
CACHE_BYTES = Gauge(
    "snapshot_renderer_cache_bytes",
    "Bytes held by each cache layer (disk: as seen by this replica).",
    ["layer"],
)
CACHE_ENTRIES = Gauge(
    "snapshot_renderer_cache_entries",
    "Entries held by each cache layer.",
    ["layer"],
)
CACHE_EVICTIONS = Counter(
    "snapshot_renderer_cache_evictions_total",
    "Entries evicted to stay within the byte bound, by layer.",
    ["layer"],
)
JOBS_IN_FLIGHT = Gauge(
    "snapshot_renderer_jobs_in_flight",
    "Render jobs received and not yet acknowledged.",
)
JOBS_WAITING = Gauge(
    "snapshot_renderer_jobs_waiting",
    "Cache misses waiting for a fair turn at the worker pool.",
)
JOB_OUTCOMES = Counter(
    "snapshot_renderer_job_outcomes_total",
    "Finished job deliveries by outcome (completed, failed, retried, rejected) and error code.",
    ["outcome", "code"],
)
PDF_BYTES = Histogram(
    "snapshot_renderer_pdf_bytes",
    "Size of rendered PDFs.",
    buckets=(10e3, 30e3, 100e3, 300e3, 1e6, 3e6, 10e6, 30e6, 100e6),
)
PDF_PAGES = Histogram(
    "snapshot_renderer_pdf_pages",
    "Page count of rendered PDFs.",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
)
FETCHES_REFUSED = Counter(
    "snapshot_renderer_fetches_refused_total",
    "URLs the WeasyPrint fetcher refused (anything but the bundled assets).",
)
WORKER_STARTS = Counter(
    "snapshot_renderer_worker_starts_total",
    "Worker processes seen for the first time (initial start and every recycle).",
)
WORKER_RECYCLES = Counter(
    "snapshot_renderer_worker_recycles_total",
    "Worker processes retired after worker_max_jobs renders and replaced by a fresh one.",
)
POOL_RESTARTS = Counter(
    "snapshot_renderer_pool_restarts_total",
    "Worker processes replaced after they died (crash, timeout or memory kill).",
)
PIECES = Counter(
    "snapshot_renderer_pieces_total",
    "Pieces of documents rendered in pieces, by where each came from (memory, disk, miss).",
    ["cache"],
)
PIECE_RENDER_SECONDS = Histogram(
    "snapshot_renderer_piece_render_duration_seconds",
    "Wall-clock time of rendering one piece in a worker process.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
ASSEMBLY_SECONDS = Histogram(
    "snapshot_renderer_assembly_duration_seconds",
    "Wall-clock time of stamping and assembling a document's pieces in a worker process.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)


def _initialise_series() -> None:
    """Create the known label sets at 0, so rates and ratios work before the first job."""
    for layer in ("memory", "disk"):
        CACHE_BYTES.labels(layer)
        CACHE_ENTRIES.labels(layer)
        CACHE_EVICTIONS.labels(layer)
        for result in ("hit", "miss"):
            CACHE_REQUESTS.labels(layer, result)
    JOB_OUTCOMES.labels("completed", "")
    for cache in ("memory", "disk", "miss"):
        PIECES.labels(cache)


_initialise_series()


def render_latest() -> tuple[bytes, str]:
    """The text exposition of this process's metrics and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
