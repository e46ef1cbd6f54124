"""The worker pool survives a worker's death: the job gets a retryable error, the next renders."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import uuid

import pytest
from prometheus_client import REGISTRY
from snapshot_renderer.errors import RenderOutOfMemory, RenderTimeout, TooManyPages, WorkerCrashed
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


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie is not alive
        return f.read().split()[2] != "Z"


async def test_render_over_time_budget_kills_its_worker_and_others_go_on() -> None:
    pool = RenderPool(concurrency=1, max_jobs_per_worker=100, timeout_seconds=0.5)
    try:
        first = await pool.render(payload(1), OPTIONS, "snapshot")
        with pytest.raises(RenderTimeout) as caught:
            await pool.render(payload(400), OPTIONS, "snapshot")
        assert caught.value.code == "render_timeout" and not caught.value.retryable
        assert not alive(first.pid)
        after = await pool.render(payload(1), OPTIONS, "snapshot")
        assert after.pid != first.pid and after.pdf.startswith(b"%PDF-")
    finally:
        await pool.close()


async def test_render_over_memory_budget_fails_with_render_oom() -> None:
    pool = RenderPool(
        concurrency=1, max_jobs_per_worker=100, timeout_seconds=120, memory_limit_bytes=100 * 2**20
    )
    try:
        first = await pool.render(payload(1), OPTIONS, "snapshot")
        with pytest.raises(RenderOutOfMemory) as caught:
            await pool.render(payload(400), OPTIONS, "snapshot")
        assert caught.value.code == "render_oom" and not caught.value.retryable
        assert not alive(first.pid)
        after = await pool.render(payload(1), OPTIONS, "snapshot")
        assert after.pid != first.pid and after.pages == 1
    finally:
        await pool.close()


async def test_page_limit_fails_with_too_many_pages() -> None:
    pool = RenderPool(concurrency=1, max_jobs_per_worker=100, timeout_seconds=120, max_pages=2)
    try:
        with pytest.raises(TooManyPages) as caught:
            await pool.render(payload(60), OPTIONS, "snapshot")
        assert caught.value.code == "too_many_pages" and "limit is 2" in caught.value.message
        assert (await pool.render(payload(1), OPTIONS, "snapshot")).pages == 1
    finally:
        await pool.close()
