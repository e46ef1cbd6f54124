"""The worker pool survives a worker's death, a render over its time budget and one over its
memory budget: the job gets the right error, the worker is replaced and the next job renders.

The faults are injected with the renderer's test-only hooks (render/faults.py), so each path is
taken whatever the machine's speed: a held render never finishes on its own, a bloating one
grows until the watchdog stops it. Only the pool's own worker is ever killed.
"""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from prometheus_client import REGISTRY
from snapshot_renderer.errors import RenderOutOfMemory, RenderTimeout, TooManyPages, WorkerCrashed
from snapshot_renderer.render.faults import FaultHooks
from snapshot_renderer.render.pool import RenderPool
from support.holds import MARKER, Holds

OPTIONS = {"page_size": "A4", "timezone": "UTC", "title": None, "locale": "en"}
BLOAT_MARKER = "bloat-test-marker-9d27"
MEMORY_LIMIT = 768 * 2**20  # far above a worker's footprint, far below the hook's 2 GiB


def payload(n_messages: int, name: str = "Pool test") -> dict[str, object]:
    at = "2026-11-24T09:00:00.000000Z"
    return {
        "room": {"id": str(uuid.UUID(int=3)), "name": name, "created_at": at},
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


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie is not alive
        return f.read().split()[2] != "Z"


@asynccontextmanager
async def hooked_pool(**kw: object) -> AsyncIterator[tuple[RenderPool, Holds]]:
    """A one-worker pool with the hold and bloat hooks on, closed afterwards."""
    holds = Holds()
    faults = FaultHooks(
        hold_marker=MARKER, hold_dir=str(holds.directory), bloat_marker=BLOAT_MARKER
    )
    options: dict = {"concurrency": 1, "max_jobs_per_worker": 100, "timeout_seconds": 120, **kw}
    pool = RenderPool(faults=faults, **options)
    try:
        await pool.warm_up()
        yield pool, holds
    finally:
        holds.close()
        await pool.close()


async def test_killed_worker_gives_retryable_error_and_a_fresh_pool() -> None:
    async with hooked_pool() as (pool, holds):
        before = restarts()
        doomed = asyncio.ensure_future(pool.render(payload(1, MARKER), OPTIONS, "snapshot"))
        held = await holds.next()  # the render is in progress in this worker
        os.kill(held.pid, signal.SIGKILL)

        with pytest.raises(WorkerCrashed) as caught:
            await doomed
        assert caught.value.retryable is True
        assert restarts() == before + 1

        result = await pool.render(payload(2), OPTIONS, "snapshot")
        assert result.pdf.startswith(b"%PDF-") and result.pages == 1
        assert result.pid != held.pid
        assert await pool.check(fresh_for=0)


async def test_render_over_time_budget_kills_its_worker_and_others_go_on() -> None:
    async with hooked_pool(timeout_seconds=10) as (pool, holds):
        first = await pool.render(payload(1), OPTIONS, "snapshot")
        stuck = asyncio.ensure_future(pool.render(payload(1, MARKER), OPTIONS, "snapshot"))
        assert (await holds.next()).pid == first.pid  # held, and never released
        with pytest.raises(RenderTimeout) as caught:
            await stuck
        assert caught.value.code == "render_timeout" and not caught.value.retryable
        assert not alive(first.pid)
        after = await pool.render(payload(1), OPTIONS, "snapshot")
        assert after.pid != first.pid and after.pdf.startswith(b"%PDF-")


async def test_render_over_memory_budget_fails_with_render_oom() -> None:
    async with hooked_pool(memory_limit_bytes=MEMORY_LIMIT) as (pool, _):
        first = await pool.render(payload(1), OPTIONS, "snapshot")
        with pytest.raises(RenderOutOfMemory) as caught:
            await pool.render(payload(1, BLOAT_MARKER), OPTIONS, "snapshot")
        assert caught.value.code == "render_oom" and not caught.value.retryable
        assert not alive(first.pid)
        after = await pool.render(payload(1), OPTIONS, "snapshot")
        assert after.pid != first.pid and after.pages == 1


async def test_page_limit_fails_with_too_many_pages() -> None:
    pool = RenderPool(concurrency=1, max_jobs_per_worker=100, timeout_seconds=120, max_pages=2)
    try:
        with pytest.raises(TooManyPages) as caught:
            await pool.render(payload(60), OPTIONS, "snapshot")
        assert caught.value.code == "too_many_pages" and "limit is 2" in caught.value.message
        assert (await pool.render(payload(1), OPTIONS, "snapshot")).pages == 1
    finally:
        await pool.close()
