"""Renderer configuration from ``SNAPSHOT_RENDERER_*`` environment variables."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from snapshot_shared.limits import SnapshotLimits
from snapshot_shared.settings import CommonSettings, SnapshotLimitSettings, shared_limit

from snapshot_renderer.render.faults import FaultHooks

MIB = 2**20
FAIR_PREFETCH_EXTRA = 8  # two users' worth of the API's default jobs per user
GIB = 2**30


def _cpu_count() -> int:
    """CPUs this process may run on (honours cpusets, unlike ``os.cpu_count``)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:
        return os.cpu_count() or 1


def _renderer_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def _job_bytes(values: dict[str, Any]) -> int:
    """The worst-case body of a job within the configured per-snapshot limits."""
    names = ("max_snapshot_messages", "max_snapshot_weight", "max_snapshot_members")
    messages, weight, members = (values.get(n) or shared_limit(n) for n in names)
    return SnapshotLimits(messages, weight, members).job_bytes()


class Settings(CommonSettings, SnapshotLimitSettings, BaseSettings):
    """Everything the renderer reads from its environment; names are part of the contract."""

    model_config = SettingsConfigDict(env_prefix="SNAPSHOT_RENDERER_", extra="ignore")

    metrics_host: str = "127.0.0.1"
    metrics_port: Annotated[int, Field(ge=0, le=65535)] = 9100
    concurrency: Annotated[int, Field(ge=1, le=256)] = Field(default_factory=_cpu_count)
    memory_cache_bytes: Annotated[int, Field(ge=0)] = 256 * MIB
    disk_cache_bytes: Annotated[int, Field(ge=0)] = 10 * GIB
    worker_max_jobs: Annotated[int, Field(ge=1)] = 100
    render_timeout_seconds: Annotated[float, Field(gt=0)] = 120.0
    render_memory_bytes: Annotated[int, Field(ge=0)] = 1 * GIB
    # Pages of one document; a room whose weight predicts more is refused before any layout.
    max_pages: Annotated[int, Field(ge=1)] = 20_000
    # Rooms of at least this many messages render in pieces (cover, chunks, sections) on every
    # replica's workers and are assembled; smaller ones render whole in one worker.
    pieces_min_messages: Annotated[int, Field(ge=1)] = 200
    # A document job waiting for its sections gives up (and is retried) after this long
    # without any piece coming back.
    piece_wait_seconds: Annotated[float, Field(gt=0)] = 300.0
    # The per-snapshot limits (max_snapshot_*) come from SnapshotLimitSettings: the shared
    # SNAPSHOT_MAX_SNAPSHOT_*, overridden by SNAPSHOT_RENDERER_MAX_SNAPSHOT_*. The largest job
    # body accepted defaults to the worst-case size of a job within them.
    max_job_bytes: Annotated[int, Field(ge=1024)] = Field(default_factory=_job_bytes)
    renderer_id: Annotated[str, Field(min_length=1, max_length=200)] = Field(
        default_factory=_renderer_id
    )
    prefetch: Annotated[int, Field(ge=1, le=10_000)] | None = None
    # Fair rendering: renders one user (a job's ``requested_by``) may run at once; default
    # half the workers (at least 1), so another user's miss finds a free worker.
    user_concurrency: Annotated[int, Field(ge=1, le=256)] | None = None
    shutdown_grace_seconds: Annotated[float, Field(ge=0)] = 30.0
    # How long a delivery waits for the status channel to reopen (after a broker restart the
    # consume channel can be back first) before it is handed back to the queue.
    status_channel_wait_seconds: Annotated[float, Field(gt=0)] = 30.0

    # Fault hooks, for tests only (render/faults.py); never set in production. Each applies to
    # rooms whose name contains its marker.
    crash_test_marker: Annotated[str, Field(min_length=8)] | None = None
    hold_test_marker: Annotated[str, Field(min_length=8)] | None = None
    hold_test_dir: Path | None = None
    bloat_test_marker: Annotated[str, Field(min_length=8)] | None = None

    @property
    def fault_hooks(self) -> FaultHooks:
        """The test-only fault hooks for the render workers."""
        return FaultHooks(
            crash_marker=self.crash_test_marker,
            hold_marker=self.hold_test_marker,
            hold_dir=str(self.hold_test_dir) if self.hold_test_dir else None,
            bloat_marker=self.bloat_test_marker,
        )

    @property
    def effective_user_concurrency(self) -> int:
        """Renders one user may run at once (never more than there are workers)."""
        wanted = self.user_concurrency or max(1, self.concurrency // 2)
        return min(wanted, self.concurrency)

    @property
    def effective_prefetch(self) -> int:
        """Unacked deliveries per consumer: room for every worker, as many cache hits, and
        ``FAIR_PREFETCH_EXTRA`` more, so that while one user's misses wait for their turns the
        jobs of other users still reach this renderer (the API publishes at most
        ``SNAPSHOT_API_RENDER_JOBS_PER_USER``, 4 by default, per user, which also bounds the
        memory one user's waiting jobs take here)."""
        if self.prefetch is not None:
            return self.prefetch
        return self.concurrency * 2 + FAIR_PREFETCH_EXTRA
