"""The renderer process wired together: pool, caches, coordinator, AMQP, consumer, ops server.

``main`` runs one ``RendererService``; integration tests run it in-process the same way.
Everything is opened in ``start`` and closed in ``stop``; nothing lives at module level.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from types import TracebackType
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractQueue, AbstractRobustConnection
from snapshot_shared.topology import declare_renderer_side, require

from snapshot_renderer.cache.disk import DiskStore
from snapshot_renderer.cache.memory import MemoryCache
from snapshot_renderer.consumer import JobHandler
from snapshot_renderer.coordinator import RenderCoordinator
from snapshot_renderer.documents import PiecedDocuments
from snapshot_renderer.events import StatusPublisher
from snapshot_renderer.fair_queue import FairQueue
from snapshot_renderer.fanout import Fanout
from snapshot_renderer.http import OpsServer
from snapshot_renderer.render.fingerprint import compute_fingerprint
from snapshot_renderer.render.pool import RenderPool
from snapshot_renderer.sections import SectionHandler
from snapshot_renderer.settings import Settings

log = logging.getLogger(__name__)
HEALTH_TIMEOUT = 3.0


class RendererService:
    """One renderer replica: consumes render jobs until ``stop``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.fingerprint = ""
        self.memory = MemoryCache(settings.memory_cache_bytes)
        self.disk = DiskStore(
            settings.store_dir, settings.disk_cache_bytes, uses=settings.store_uses_dir
        )
        self.ops = OpsServer(settings.metrics_host, settings.metrics_port, self.health)
        self.pool: RenderPool | None = None
        self.connection: AbstractRobustConnection | None = None
        self.coordinator: RenderCoordinator | None = None
        self.turns: FairQueue | None = None
        self.handler: JobHandler | None = None
        self._queue: AbstractQueue | None = None
        self._consumer_tag: str | None = None
        self.sections: SectionHandler | None = None
        self._sections_queue: AbstractQueue | None = None
        self._sections_tag: str | None = None
        self.failed_declarations = 0

    async def start(self) -> None:
        """Open everything, warm the workers up, then start consuming."""
        s = self.settings
        await self.ops.start()
        self.connection = await self._connect()  # first, so a wrong URL fails fast
        self.fingerprint = await asyncio.to_thread(compute_fingerprint)
        self.pool = RenderPool(
            s.concurrency,
            s.worker_max_jobs,
            s.render_timeout_seconds,
            s.log_level,
            s.log_format,
            memory_limit_bytes=s.render_memory_bytes,
            max_pages=s.max_pages,
            faults=s.fault_hooks,
        )
        await self.pool.warm_up()
        await self.disk.open()
        publish_channel, jobs = await self._open_channels()
        self.turns = FairQueue(s.concurrency, s.effective_user_concurrency)
        self.coordinator = RenderCoordinator(
            pool=self.pool,
            memory=self.memory,
            disk=self.disk,
            lock_wait_seconds=s.render_timeout_seconds * 2 + 30,
            turns=self.turns,
        )
        await self._start_pieces(publish_channel)
        self.handler = JobHandler(
            coordinator=self.coordinator,
            publisher=StatusPublisher(publish_channel, s.renderer_id),
            fingerprint=self.fingerprint,
            default_reply_to=s.topology.status_queue,
            max_job_bytes=s.max_job_bytes,
            topology=s.topology,
            snapshot_limits=s.snapshot_limits,
            channel_wait_seconds=s.status_channel_wait_seconds,
        )
        self._queue = jobs
        self._consumer_tag = await jobs.consume(self.handler, no_ack=False)
        log.info(
            "renderer consuming %s",
            s.topology.jobs_queue,
            extra={
                "fingerprint": self.fingerprint[:12],
                "concurrency": s.concurrency,
                "user_concurrency": s.effective_user_concurrency,
                "prefetch": s.effective_prefetch,
            },
        )

    async def _start_pieces(self, publish_channel: AbstractChannel) -> None:
        """Documents in pieces: this replica's reply queue, the ``render.pieces`` consumer
        (prefetch: one section per worker, so the sections of a big room spread over every
        replica) and the coordinator's ``documents``."""
        s = self.settings
        assert self.connection is not None and self.coordinator is not None
        assert self.pool is not None
        publisher = StatusPublisher(publish_channel, s.renderer_id)
        fanout = Fanout(
            publisher=publisher,
            pieces_queue=s.topology.pieces_queue,
            reply_queue=s.topology.pieces_reply_queue(s.renderer_id),
            silence_seconds=s.piece_wait_seconds,
        )
        await fanout.start(await self.connection.channel())
        sections_channel = await self.connection.channel()
        await sections_channel.set_qos(prefetch_count=s.concurrency)
        self._sections_queue = await sections_channel.get_queue(s.topology.pieces_queue)
        self.sections = SectionHandler(
            coordinator=self.coordinator,
            pool=self.pool,
            publisher=publisher,
            fingerprint=self.fingerprint,
            max_bytes=s.max_job_bytes,
        )
        self._sections_tag = await self._sections_queue.consume(self.sections, no_ack=False)
        self.coordinator.documents = PiecedDocuments(
            coordinator=self.coordinator,
            pool=self.pool,
            fanout=fanout,
            fingerprint=self.fingerprint,
            min_messages=s.pieces_min_messages,
            max_pages=s.max_pages,
            max_weight=s.max_snapshot_weight,
        )

    async def _open_channels(self) -> tuple[AbstractChannel, AbstractQueue]:
        """The confirmed publish channel and the declared jobs queue (on a consume channel with
        the prefetch set), once the queues the API declares exist (status events and rejected
        jobs go there; the renderer's broker user may not declare them). Retried with backoff:
        the API not started yet, replicas and API workers declaring the quorum queues at the
        same moment (541 INTERNAL_ERROR), a conflicting declaration until an operator fixes
        it; each is logged."""
        s = self.settings
        delay = 0.5
        while True:
            assert self.connection is not None
            try:
                publish_channel = await self.connection.channel(
                    publisher_confirms=True, on_return_raises=True
                )
                consume_channel = await self.connection.channel()
                await consume_channel.set_qos(prefetch_count=s.effective_prefetch)
                jobs = await declare_renderer_side(consume_channel, s.topology)
                api_queues = (s.topology.status_queue, s.topology.dead_queue)
                check = await self.connection.channel()  # a missing queue closes it
                await require(check, api_queues, "the API")
                await check.close()
                return publish_channel, jobs
            except Exception as exc:  # noqa: BLE001 - reconnect and declare again
                self.failed_declarations += 1
                log.warning("declaring the topology failed (%s); retrying in %.1fs", exc, delay)
                with contextlib.suppress(Exception):
                    await self.connection.close()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                self.connection = await self._connect()

    async def _connect(self) -> AbstractRobustConnection:
        s = self.settings
        return await aio_pika.connect_robust(
            str(s.amqp_url), client_properties={"connection_name": f"renderer {s.renderer_id}"}
        )

    async def stop(self) -> None:
        """Stop consuming, let in-flight jobs finish (bounded), then close everything."""
        if self._queue is not None and self._consumer_tag is not None:
            with contextlib.suppress(Exception):
                await self._queue.cancel(self._consumer_tag)
            self._consumer_tag = None
        if self._sections_queue is not None and self._sections_tag is not None:
            with contextlib.suppress(Exception):
                await self._sections_queue.cancel(self._sections_tag)
            self._sections_tag = None
        if self.turns is not None:
            self.turns.close()  # misses still waiting for a turn go back to the queue now
        finished = True
        if self.handler is not None and self.handler.active:
            log.info("waiting for %d in-flight job(s)", self.handler.active)
            finished = await self.handler.wait_idle(self.settings.shutdown_grace_seconds)
            if not finished:
                log.warning("grace period over; unfinished jobs go back to the queue")
        await self.ops.close()
        if self.connection is not None:
            with contextlib.suppress(Exception):
                await self.connection.close()
            self.connection = None
        if self.pool is not None:
            await self.pool.close(wait=finished)
            self.pool = None

    async def health(self) -> tuple[bool, dict[str, Any]]:
        """Healthy when the worker pool answers, the AMQP connection is up and jobs are being
        consumed (not yet while the topology is still being declared, no more once stopping)."""
        connection = self.connection
        amqp_ok = bool(connection and not connection.is_closed and connection.connected.is_set())
        pool_ok = self.pool is not None and await self.pool.check(HEALTH_TIMEOUT)
        details = {
            "renderer_id": self.settings.renderer_id,
            "amqp": "ok" if amqp_ok else "down",
            "pool": "ok" if pool_ok else "down",
            "consuming": self._consumer_tag is not None,
            "jobs_in_flight": self.handler.active if self.handler else 0,
            "fingerprint": self.fingerprint,
        }
        return amqp_ok and pool_ok and self._consumer_tag is not None, details

    async def __aenter__(self) -> RendererService:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
