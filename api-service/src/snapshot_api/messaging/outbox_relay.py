"""The outbox relay: publishes render jobs written by committed transactions.

Woken right after each commit (``kick``) and also polls, so rows left behind by a crash, a
broker outage or another worker are published too. Rows are taken with ``DELETE … RETURNING``
(``SKIP LOCKED``) in a transaction that commits only after every publish was confirmed: three
round trips per batch. A failed publish rolls the rows back; a crash between the confirm and
the commit re-publishes a job, which the renderer treats as a duplicate.
"""

from __future__ import annotations

import asyncio
import logging

import aio_pika
import asyncpg

from snapshot_api.background import BackgroundLoop
from snapshot_api.db import outbox
from snapshot_api.messaging.broker import Broker
from snapshot_api.metrics import OUTBOX_PUBLISHED

log = logging.getLogger(__name__)
BATCH = 100


class OutboxRelay(BackgroundLoop):
    name = "outbox-relay"

    def __init__(self, pool: asyncpg.Pool, broker: Broker, poll_seconds: float) -> None:
        super().__init__()
        self.pool = pool
        self.broker = broker
        self.poll_seconds = poll_seconds
        self._wake = asyncio.Event()

    def kick(self) -> None:
        self._wake.set()

    async def _run(self) -> None:
        await self.broker.connected.wait()
        while True:
            try:
                while await self.publish_batch() == BATCH:
                    pass
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the rows stay; the next round retries
                log.warning("outbox relay round failed: %s", exc)
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_seconds)
            except TimeoutError:
                pass
            self._wake.clear()

    async def publish_batch(self) -> int:
        """Publish up to one batch of pending jobs; return how many were published."""
        declared = self.broker.declared
        if declared is None or not self.broker.is_up:
            return 0
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await outbox.take(conn, BATCH)
            if rows:
                await asyncio.gather(*(self._publish(declared.exchange, r) for r in rows))
        if rows:
            OUTBOX_PUBLISHED.inc(len(rows))
        return len(rows)

    async def _publish(self, exchange: aio_pika.abc.AbstractExchange, row: asyncpg.Record) -> None:
        task_id = str(row["task_id"])
        message = aio_pika.Message(
            body=row["body"],
            content_type="application/json",
            content_encoding=row["content_encoding"],
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            correlation_id=task_id,
            message_id=task_id,
            reply_to=self.broker.topology.status_queue,
            headers={"x-request-id": row["request_id"] or ""},
        )
        await exchange.publish(message, routing_key=row["routing_key"], mandatory=True)
