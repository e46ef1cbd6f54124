"""Renderer configuration from ``SNAPSHOT_RENDERER_*`` environment variables."""

from __future__ import annotations

import os
import socket
from typing import Annotated

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from snapshot_shared.settings import CommonSettings

MIB = 2**20
GIB = 2**30


def _cpu_count() -> int:
    """CPUs this process may run on (honours cpusets, unlike ``os.cpu_count``)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:
        return os.cpu_count() or 1


def _renderer_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class Settings(CommonSettings, BaseSettings):
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
    max_pages: Annotated[int, Field(ge=1)] = 2000
    crash_test_marker: Annotated[str, Field(min_length=8)] | None = None
    max_job_bytes: Annotated[int, Field(ge=1024)] = 64 * MIB
    renderer_id: Annotated[str, Field(min_length=1, max_length=200)] = Field(
        default_factory=_renderer_id
    )
    prefetch: Annotated[int, Field(ge=1, le=10_000)] | None = None
    shutdown_grace_seconds: Annotated[float, Field(ge=0)] = 30.0

    @property
    def effective_prefetch(self) -> int:
        """Unacked deliveries per consumer: room for every worker plus as many cache hits."""
        return self.prefetch if self.prefetch is not None else self.concurrency * 2
