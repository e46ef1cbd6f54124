"""The benchmark's stack: ``support.stack.Stack`` plus what only the bench needs.

A renderer with R worker processes and a render budget long enough for the big rooms, the API's
and renderer's process trees (for CPU and RSS), RabbitMQ queue depths and purges, a static file
server to compare downloads against, and a ``stop`` that also removes the temp folders.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import aio_pika
from snapshot_shared.topology import JOBS_ROUTING_KEY, Topology, declare_api_side
from support.services import AMQP_URL, delete_topology, drop_database
from support.stack import BIN, Stack, end_process, free_port

TESTS_DIR = Path(__file__).resolve().parents[1]


async def amqp_connect(patience: float = 60.0) -> aio_pika.abc.AbstractConnection:
    """A broker connection that waits out a RabbitMQ restart (other suites' fault tests)."""
    end = time.monotonic() + patience
    while True:
        try:
            return await aio_pika.connect(AMQP_URL)
        except (OSError, aio_pika.exceptions.AMQPConnectionError):
            if time.monotonic() > end:
                raise
            await asyncio.sleep(0.5)


class BenchStack(Stack):
    def __init__(
        self,
        api_workers: int,
        renderer_concurrency: int,
        render_timeout: float,
        render_memory: int = 3 * 2**30,
    ) -> None:
        super().__init__(
            workers=api_workers,
            renderer_env={  # (shared with the API; the default snapshot limits take its rooms)
                "SNAPSHOT_API_RATE_LIMITS": "off",  # load generators are single users
                "SNAPSHOT_RENDERER_CONCURRENCY": str(renderer_concurrency),
                "SNAPSHOT_RENDERER_RENDER_TIMEOUT_SECONDS": str(render_timeout),
                "SNAPSHOT_RENDERER_RENDER_MEMORY_BYTES": str(render_memory),
                "SNAPSHOT_API_WEBHOOK_ALLOW_LOOPBACK": "true",  # item 8's receiver
            },
        )
        self.api_workers = api_workers
        self.renderer_concurrency = renderer_concurrency
        self.topology = Topology(prefix=self.prefix)
        self.static: subprocess.Popen[bytes] | None = None
        self.static_port = 0
        self.standby: subprocess.Popen[bytes] | None = None
        self.standby_prefix = self.prefix.rstrip(".") + "-standby."

    # --- process trees -------------------------------------------------------------------
    @property
    def api_pid(self) -> int:
        assert self.api is not None
        return self.api.pid

    @property
    def renderer_pid(self) -> int:
        return self.renderers[0].pid

    def _spawn_renderer(self, **extra_env: str) -> subprocess.Popen[bytes]:
        metrics_port = free_port()
        env = {**self.env, "SNAPSHOT_RENDERER_METRICS_PORT": str(metrics_port), **extra_env}
        self._count += 1
        proc = self._spawn([str(BIN / "snapshot-renderer")], f"renderer{self._count}.log", env)
        proc.metrics_port = metrics_port  # type: ignore[attr-defined]
        return proc

    def _wait_renderer(self, proc: subprocess.Popen[bytes]) -> None:
        port = proc.metrics_port  # type: ignore[attr-defined]
        self._wait_http(f"http://127.0.0.1:{port}/healthz", proc, "renderer")

    def start_all(self) -> None:
        """Start the API, a renderer and a standby replica at once (their start-ups overlap,
        before anything is measured) and wait for all three.

        The standby consumes from a queue of its own prefix, which receives nothing until
        ``switch_to_standby`` binds it to the API's exchange: a renderer that never saw the
        bench's documents, so its memory LRU is as empty as after a restart, without the
        restart's ten seconds in the middle of the run."""
        self.api = self._spawn([str(BIN / "snapshot-api"), "serve"], "api.log", self.env)
        self.renderers.append(self._spawn_renderer())
        asyncio.run(self._declare_standby_api_side())
        self.standby = self._spawn_renderer(SNAPSHOT_RENDERER_QUEUE_PREFIX=self.standby_prefix)
        self.wait_ready()
        for proc in (*self.renderers, self.standby):
            self._wait_renderer(proc)

    async def _declare_standby_api_side(self) -> None:
        """A renderer consumes once the API's queues of its prefix exist (the API declares
        them); no API runs with the standby's prefix, so the bench declares them for it."""
        conn = await amqp_connect()
        try:
            await declare_api_side(await conn.channel(), Topology(prefix=self.standby_prefix))
        finally:
            await conn.close()

    def switch_to_standby(self) -> None:
        """Stop the running renderer(s); route the API's jobs to the standby replica."""
        assert self.standby is not None
        self.stop_renderers()

        async def bind() -> None:
            conn = await amqp_connect()
            try:
                channel = await conn.channel()
                queue = await channel.declare_queue(
                    Topology(prefix=self.standby_prefix).jobs_queue, passive=True
                )
                await queue.bind(self.topology.exchange, JOBS_ROUTING_KEY)
                old = await channel.declare_queue(self.topology.jobs_queue, passive=True)
                await old.unbind(self.topology.exchange, JOBS_ROUTING_KEY)
            finally:
                await conn.close()

        asyncio.run(bind())
        self.renderers.append(self.standby)
        self.standby = None

    def stop_renderers(self) -> None:
        for proc in list(self.renderers):
            self.stop_renderer(proc, signal.SIGTERM)

    # --- static file server (the download baseline) --------------------------------------
    def start_static(self, directory: Path) -> str:
        """``directory`` served by Starlette's StaticFiles under uvicorn, with the same worker
        count, event loop and HTTP parser as the API; returns its base URL."""
        self.static_port = free_port()
        env = {**self.env, "BENCH_STATIC_DIR": str(directory)}
        args = [
            str(BIN / "uvicorn"),
            "bench.static_app:create_app",
            "--factory",
            "--app-dir",
            str(TESTS_DIR),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.static_port),
            "--workers",
            str(self.api_workers),
            "--log-level",
            "warning",
            "--no-access-log",
        ]
        self.static = self._spawn(args, "static.log", env)
        base = f"http://127.0.0.1:{self.static_port}"
        self._wait_http(base + "/healthz", self.static, "static server")
        return base

    # --- RabbitMQ ------------------------------------------------------------------------
    def queue_depths(self) -> dict[str, int]:
        """Ready messages in the jobs and status queues."""

        async def run() -> dict[str, int]:
            conn = await amqp_connect()
            try:
                channel = await conn.channel()
                depths = {}
                for name in (self.topology.jobs_queue, self.topology.status_queue):
                    queue = await channel.declare_queue(name, passive=True)
                    depths[name] = int(queue.declaration_result.message_count or 0)
                return depths
            finally:
                await conn.close()

        return asyncio.run(run())

    def purge_jobs(self) -> int:
        """Drop the jobs nobody consumed (runs without a renderer leave them behind)."""

        async def run() -> int:
            conn = await amqp_connect()
            try:
                channel = await conn.channel()
                queue = await channel.declare_queue(self.topology.jobs_queue, passive=True)
                result = await queue.purge()
                return int(getattr(result, "message_count", 0) or 0)
            finally:
                await conn.close()

        return asyncio.run(run())

    # --- teardown --------------------------------------------------------------------------
    def stop(self) -> None:
        try:
            for proc in (self.static, self.standby):
                end_process(proc, grace=15)
        finally:
            try:
                super().stop()
            except Exception:  # PostgreSQL or RabbitMQ restarting: wait, then clean up again
                time.sleep(10)
                drop_database(self.database_url)
                delete_topology(self.prefix)
            delete_topology(self.standby_prefix)
            shutil.rmtree(self.store, ignore_errors=True)
            shutil.rmtree(self.env["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)

    def discard_logs(self) -> None:
        shutil.rmtree(self.logs, ignore_errors=True)


def python() -> str:
    """The interpreter the bench runs on (the workspace venv)."""
    return sys.executable
