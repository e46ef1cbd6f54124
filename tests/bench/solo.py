"""A renderer replica of the bench's own, driven by render jobs published straight to it.

``SoloRenderer`` runs ``snapshot-renderer`` as a real process on a queue prefix, a store and a
log folder of its own, with the renderer's default budgets unless told otherwise. The bench
declares the API's side of the topology itself (status and dead-letter queues: no API runs on
this prefix), publishes each ``RenderJob`` the way the API does (persistent, mandatory,
confirmed, gzip above 1 KiB) and reads the job's status events from the status queue: the wall
time from the publish to the ``completed`` event, the artifact, and the peak resident memory
of the renderer's worker processes meanwhile (``procstat.WorkerRss``). ``metrics`` reads the
replica's own ``/metrics``. ``stop`` ends the process and removes its queues, store and logs.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aio_pika
import httpx
from aio_pika.abc import AbstractIncomingMessage
from prometheus_client.parser import text_string_to_metric_families
from snapshot_shared.messages import EventError, RenderJob, StatusEvent, decode_event, encode
from snapshot_shared.topology import JOBS_ROUTING_KEY, Topology, declare_api_side
from support.services import AMQP_URL, delete_topology, unique
from support.stack import BIN, end_process, free_port
from support.waiting import until_sync

from bench.procstat import MIB, WorkerRss
from bench.stack import amqp_connect

GZIP_THRESHOLD = 1024  # the API's default (SNAPSHOT_API_GZIP_THRESHOLD_BYTES)
# A job that reports nothing for longer than the default piece wait (300 s) and a margin is
# given up as ``bench_silence`` (a document in pieces reports each percent of its pieces):
# a job stuck after a broker restart must not hold the run for the whole timeout.
SILENCE_SECONDS = 330.0
TERMINAL = ("completed", "failed")


def _given_up(job: RenderJob) -> StatusEvent:
    """A stand-in ``failed`` event for a job that went silent."""
    return StatusEvent(
        task_id=job.task_id,
        snapshot_id=job.snapshot_id,
        event="failed",
        error=EventError(
            code="bench_silence", message=f"no status event for {SILENCE_SECONDS:.0f} s"
        ),
        at=dt.datetime.now(dt.UTC),
    )


@dataclass
class Outcome:
    """One job through a ``SoloRenderer``: its terminal event and what was measured."""

    event: StatusEvent
    wall_s: float  # publish → completed event received
    rss: WorkerRss
    progress_events: int

    @property
    def ok(self) -> bool:
        return self.event.event == "completed"

    @property
    def pages(self) -> int:
        return self.event.artifact.pages if self.event.artifact else 0

    @property
    def pdf_bytes(self) -> int:
        return self.event.artifact.bytes if self.event.artifact else 0

    def summary(self) -> dict[str, Any]:
        error = self.event.error
        return {
            "status": self.event.event,
            "cache": self.event.cache,
            "error": f"{error.code}: {error.message}" if error else None,
            "wall_s": round(self.wall_s, 3),
            "render_ms": self.event.render_ms,
            "pages": self.pages,
            "pdf_bytes": self.pdf_bytes,
            "worker_peak_rss_mb": round(self.rss.worker_peak / MIB),
            "worker_peak_rss_mb_by_phase": {
                phase: round(peak / MIB) for phase, peak in self.rss.phase_peaks.items()
            },
            "renderer_main_peak_rss_mb": round(self.rss.main_peak / MIB),
            "workers_seen": len(self.rss.workers),
            "cpu_seconds": self.rss.cpu_seconds(),
            "progress_events": self.progress_events,
        }


class SoloRenderer:
    """One ``snapshot-renderer`` process on its own prefix and store (see the module doc)."""

    def __init__(self, name: str, concurrency: int, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.prefix = unique(f"b{name[:6]}") + "."
        self.topology = Topology(prefix=self.prefix)
        self.store = Path(tempfile.mkdtemp(prefix=f"bench-{name}-store-"))
        self.logs = Path(tempfile.mkdtemp(prefix=f"bench-{name}-logs-"))
        self.metrics_port = free_port()
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("SNAPSHOT_")}
        self.env = {
            **inherited,  # no SNAPSHOT_* of the caller's: the defaults, unless ``env`` says
            "SNAPSHOT_RENDERER_AMQP_URL": AMQP_URL,
            "SNAPSHOT_RENDERER_QUEUE_PREFIX": self.prefix,
            "SNAPSHOT_RENDERER_STORE_DIR": str(self.store),
            "SNAPSHOT_RENDERER_METRICS_PORT": str(self.metrics_port),
            "SNAPSHOT_RENDERER_CONCURRENCY": str(concurrency),
            "SNAPSHOT_RENDERER_RENDERER_ID": f"bench-{name}",
            **(env or {}),
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def spawn(self) -> None:
        """Declare the API's queues of this prefix and start the process (not waited for)."""
        asyncio.run(self._declare_api_side())
        with (self.logs / "renderer.log").open("ab") as out:
            self.proc = subprocess.Popen(
                [str(BIN / "snapshot-renderer")],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_healthy(self, timeout: float = 180) -> None:
        url = f"http://127.0.0.1:{self.metrics_port}/healthz"

        def healthy() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"renderer {self.name} exited: {self.log_tail()}")
            try:
                return httpx.get(url, timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        until_sync(healthy, timeout, f"renderer {self.name} healthy", interval=0.1)

    async def _declare_api_side(self) -> None:
        conn = await amqp_connect()
        try:
            await declare_api_side(await conn.channel(), self.topology)
        finally:
            await conn.close()

    def log_tail(self, lines: int = 30) -> str:
        path = self.logs / "renderer.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def render(self, job: RenderJob, timeout: float = 3600) -> Outcome:
        """Publish ``job`` and wait for its terminal event, sampling the workers' memory."""
        body, encoding = encode(job, gzip_threshold=GZIP_THRESHOLD)
        rss = WorkerRss(self.pid)
        with rss:
            event, wall, progress = asyncio.run(
                self._publish_and_wait(job, body, encoding, timeout, rss)
            )
        return Outcome(event, wall, rss, progress)

    async def _publish_and_wait(
        self, job: RenderJob, body: bytes, encoding: str | None, timeout: float, rss: WorkerRss
    ) -> tuple[StatusEvent, float, int]:
        # Robust: other suites' fault tests restart the broker; the durable status queue keeps
        # the events meanwhile, and the consumer comes back with the connection.
        conn = await aio_pika.connect_robust(AMQP_URL)
        try:
            channel = await conn.channel(publisher_confirms=True, on_return_raises=True)
            status = await channel.get_queue(self.topology.status_queue)
            exchange = await channel.get_exchange(self.topology.exchange)
            events: asyncio.Queue[StatusEvent] = asyncio.Queue()

            async def on_event(message: AbstractIncomingMessage) -> None:
                await message.ack()
                events.put_nowait(decode_event(message.body, message.content_encoding))

            await status.consume(on_event)
            message = aio_pika.Message(
                body,
                content_type="application/json",
                content_encoding=encoding,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                reply_to=self.topology.status_queue,
                correlation_id=str(job.task_id),
            )
            sent = time.perf_counter()
            await exchange.publish(message, routing_key=JOBS_ROUTING_KEY, mandatory=True)
            progress = 0
            async with asyncio.timeout(timeout):
                while True:
                    try:
                        event = await asyncio.wait_for(events.get(), SILENCE_SECONDS)
                    except TimeoutError:
                        return _given_up(job), time.perf_counter() - sent, progress
                    if event.task_id != job.task_id:
                        continue
                    if event.event in TERMINAL:
                        return event, time.perf_counter() - sent, progress
                    progress += event.event == "progress"
                    rss.phase = event.phase or event.event
        finally:
            await conn.close()

    def metrics(self) -> dict[str, float]:
        return scrape(self.metrics_port)

    def stop(self) -> None:
        try:
            end_process(self.proc, grace=30)
        finally:
            self.proc = None
            delete_topology(self.prefix)
            shutil.rmtree(self.store, ignore_errors=True)
            if os.environ.get("BENCH_KEEP_LOGS", "") in ("", "0"):
                shutil.rmtree(self.logs, ignore_errors=True)


@contextmanager
def running(*renderers: SoloRenderer) -> Iterator[None]:
    """Start ``renderers`` together (their start-ups overlap), stop them all afterwards."""
    try:
        for renderer in renderers:
            renderer.spawn()
        for renderer in renderers:
            renderer.wait_healthy()
        yield
    finally:
        for renderer in renderers:
            renderer.stop()


def scrape(port: int) -> dict[str, float]:
    """A renderer's ``/metrics`` as ``{"name{label=value,...}": value}``."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            out[f"{sample.name}{{{labels}}}"] = sample.value
    return out


def delta(before: dict[str, float], after: dict[str, float], name: str) -> float:
    """How much the sample ``name`` grew between two ``metrics()`` reads."""
    return after.get(name, 0.0) - before.get(name, 0.0)
