"""One robust AMQP connection per process, opened in the background so the API starts (and
keeps accepting snapshots into the outbox) while RabbitMQ is down."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractRobustConnection
from snapshot_shared.topology import ApiDeclared, Topology, declare_api_side

log = logging.getLogger(__name__)
OnReady = Callable[[AbstractChannel, ApiDeclared], Awaitable[None]]


class Broker:
    """Connects with retries, declares the API's side of the topology (``render.jobs`` is the
    renderer's), then runs the ``on_ready`` callbacks.

    ``channel`` declares the topology; the callbacks (the consumers) get a channel of their
    own, and the outbox relay opens its own publish channel, so a channel the broker closes
    takes only its own work down."""

    def __init__(self, url: str, topology: Topology) -> None:
        self.url = url
        self.topology = topology
        self.connection: AbstractRobustConnection | None = None
        self.channel: AbstractChannel | None = None
        self.declared: ApiDeclared | None = None
        self.connected = asyncio.Event()
        self.failed_attempts = 0  # connect/declare attempts that failed before the first success
        self._on_ready: list[OnReady] = []
        self._task: asyncio.Task[None] | None = None

    def on_ready(self, callback: OnReady) -> None:
        self._on_ready.append(callback)

    @property
    def is_up(self) -> bool:
        conn = self.connection
        return (
            conn is not None
            and not conn.is_closed
            and self.connected.is_set()
            and bool(getattr(conn, "connected", asyncio.Event()).is_set())
        )

    def start(self) -> None:
        self._task = asyncio.create_task(self._connect_forever(), name="amqp-connect")

    async def _connect_forever(self) -> None:
        """Connect, open the channel, declare, run the callbacks; on any failure start over.

        Every step is retried, not only the connect: two API workers declaring the quorum
        queues at the same moment can get the connection closed by RabbitMQ (541
        INTERNAL_ERROR), and a worker that gave up there would never publish or consume.
        """
        delay = 0.5
        while True:
            connection: AbstractRobustConnection | None = None
            try:
                connection = await aio_pika.connect_robust(self.url, timeout=5)
                channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
                declared = await declare_api_side(channel, self.topology)
                consume_channel = await connection.channel()
                for callback in self._on_ready:
                    await callback(consume_channel, declared)
            except asyncio.CancelledError:  # shutting down before the broker was ready
                await _close_quietly(connection)
                raise
            except Exception as exc:  # noqa: BLE001 - any failure means "try again later"
                self.failed_attempts += 1
                log.warning("RabbitMQ not ready (%s); retrying in %.1fs", exc, delay)
                await _close_quietly(connection)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            self.connection, self.channel, self.declared = connection, channel, declared
            self.connected.set()
            log.info("connected to RabbitMQ")
            return

    async def close(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        if self.connection is not None:
            await self.connection.close()


async def _close_quietly(connection: AbstractRobustConnection | None) -> None:
    if connection is not None:
        with contextlib.suppress(Exception):
            await connection.close()
