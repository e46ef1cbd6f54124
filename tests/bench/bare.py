"""The render baselines: the renderer's own template + WeasyPrint code with nothing around it.

``BarePool`` renders documents in R spawned processes set up exactly like the renderer's
workers (``init_worker``: Jinja2 environment, font configuration, parsed CSS, warm-up render),
with no AMQP, no caches, no database: the throughput baseline of item 3 and the render time
and peak RSS baseline of item 5.
"""

from __future__ import annotations

import multiprocessing
import resource
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor, wait
from typing import Any

from snapshot_renderer.render import worker

RenderInput = tuple[dict[str, Any], dict[str, Any], str]


def measured_render(payload: dict[str, Any], options: dict[str, Any], template: str) -> dict:
    """One render in a pool worker: its time, size and the worker's peak RSS so far."""
    result = worker.render_job(payload, options, template)
    return {
        "seconds": result.seconds,
        "pages": result.pages,
        "bytes": len(result.pdf),
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "pid": result.pid,
    }


class BarePool:
    """R spawned processes set up like the renderer's workers; started early, so their start-up
    and warm-up render happen while the bench creates its rooms, not while it measures."""

    def __init__(self, processes: int) -> None:
        self.processes = processes
        self._pool = ProcessPoolExecutor(
            max_workers=processes,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=worker.init_worker,
            initargs=("WARNING", "console"),
        )
        self._warm = [self._pool.submit(worker.ping) for _ in range(processes)]

    def ready(self) -> None:
        wait(self._warm)

    def loop(self, inputs: list[RenderInput]) -> dict[str, Any]:
        """Render every input once across the R workers; documents per second."""
        self.ready()
        started = time.perf_counter()
        futures = [self._pool.submit(worker.render_job, *item) for item in inputs]
        results = [f.result() for f in futures]
        wall = time.perf_counter() - started
        return {
            "docs": len(inputs),
            "wall_s": round(wall, 3),
            "docs_per_s": len(inputs) / wall,
            "render_s": sorted(r.seconds for r in results),
            "pids": len({r.pid for r in results}),
        }

    def render(self, item: RenderInput) -> Future[dict[str, Any]]:
        """Start one measured render (``measured_render``) in a worker."""
        self.ready()
        return self._pool.submit(measured_render, *item)

    def call(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        """Run a module-level function in a worker (``template_cost.compare``, say)."""
        self.ready()
        return self._pool.submit(fn, *args)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> BarePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
