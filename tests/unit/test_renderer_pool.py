"""The worker pool survives a worker's death: the job gets a retryable error, the next renders."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import uuid

import pytest
from prometheus_client import REGISTRY
from snapshot_renderer.errors import WorkerCrashed
from snapshot_renderer.render.pool import RenderPool

OPTIONS = {"page_size": "A4", "timezone": "UTC", "title": None, "locale": "en"}


def payload(n_messages: int) -> dict[str, object]:
    at = "2026-11-24T09:00:00.000000Z"
    return {
        "room": {"id": str(uuid.UUID(int=3)), "name": "Pool test", "created_at": at},
        "sections": ["messages"],
        "messages": [
            {
                "id": str(uuid.UUID(int=i + 1)),
                "author_id": "u",
                "author_name": "Ada",
                "created_at": at,
                "body": f"message {i} " * 40,
                "kind": "message",
            }
            for i in range(n_messages)
        ],
        "as_of": at,
    }


def restarts() -> float:
    return REGISTRY.get_sample_value("snapshot_renderer_pool_restarts_total") or 0.0


async def test_killed_worker_gives_retryable_error_and_a_fresh_pool() -> None:
    pool = RenderPool(concurrency=1, max_jobs_per_worker=100, timeout_seconds=120)
    try:
        await pool.warm_up()
        before = restarts()
        doomed = asyncio.create_task(pool.render(payload(400), OPTIONS, "snapshot"))
        await asyncio.sleep(0)  # let the task submit its render to the worker
        for child in multiprocessing.active_children():
            os.kill(child.pid, signal.SIGKILL)

        with pytest.raises(WorkerCrashed) as caught:
            await doomed
        assert caught.value.retryable is True
        assert restarts() == before + 1

        result = await pool.render(payload(2), OPTIONS, "snapshot")
        assert result.pdf.startswith(b"%PDF-") and result.pages == 1
        assert await pool.check(fresh_for=0)
    finally:
        await pool.close()
