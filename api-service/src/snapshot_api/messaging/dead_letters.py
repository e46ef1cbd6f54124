"""Why a message was dead-lettered, read from the headers RabbitMQ adds (``x-death``), and the
``failed`` event a dead-lettered render job turns into."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from snapshot_shared.messages import EventError, RenderJob, StatusEvent


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value or "")


def death_reason(headers: Mapping[str, Any] | None) -> str:
    """The reason of the latest dead-lettering: ``rejected``, ``delivery_limit``, ``expired``…

    ``x-death`` lists the deaths most recent first. ``x-first-death-reason`` is only the
    fallback: it keeps the first death for good, and a retried job's first death is the
    ``expired`` of its stay in a delay queue.
    """
    headers = headers or {}
    deaths = headers.get("x-death")
    if isinstance(deaths, list | tuple) and deaths and isinstance(deaths[0], Mapping):
        reason = _text(deaths[0].get("reason"))
        if reason:
            return reason
    return _text(headers.get("x-first-death-reason")) or "unknown"


def dead_job_event(job: RenderJob, reason: str, delivery_limit: int) -> StatusEvent:
    """The terminal event of a job that came back through ``render.jobs.dead``."""
    if reason == "delivery_limit":
        error = EventError(
            code="delivery_limit_exceeded",
            message=f"The render job failed {delivery_limit} deliveries in a row",
        )
    elif reason == "rejected":
        error = EventError(
            code="job_rejected",
            message="The renderer rejected the job (undecodable or too large)",
        )
    else:
        error = EventError(
            code="job_dead_lettered", message=f"The job was dead-lettered ({reason})"
        )
    return StatusEvent(
        task_id=job.task_id,
        snapshot_id=job.snapshot_id,
        event="failed",
        phase="dead_lettered",
        error=error,
        at=dt.datetime.now(dt.UTC),
    )
