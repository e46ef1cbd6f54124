"""Consumers of ``render.status`` (renderer events) and ``render.jobs.dead`` (poison jobs).

Each event is applied in its own transaction and acknowledged only after the commit; when
PostgreSQL cannot answer, the message goes back to the queue and is applied later.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

import asyncpg
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage
from snapshot_shared.logging import bound
from snapshot_shared.messages import (
    EventError,
    MessageDecodeError,
    StatusEvent,
    decode_event,
    decode_job,
)
from snapshot_shared.topology import Declared

from snapshot_api.metrics import DEAD_LETTERED, STATUS_EVENTS
from snapshot_api.problems import DATABASE_DOWN
from snapshot_api.services.tasks import apply_event

log = logging.getLogger(__name__)
RETRY_PAUSE_SECONDS = 1.0


class StatusConsumer:
    def __init__(self, pool: asyncpg.Pool, prefetch: int, delivery_limit: int) -> None:
        self.pool = pool
        self.prefetch = prefetch
        self.delivery_limit = delivery_limit

    async def attach(self, channel: AbstractChannel, declared: Declared) -> None:
        """Start consuming both queues on ``channel`` (called once the broker is up)."""
        await channel.set_qos(prefetch_count=self.prefetch)
        await declared.status.consume(self.on_status, no_ack=False)
        await declared.dead.consume(self.on_dead, no_ack=False)

    async def on_status(self, message: AbstractIncomingMessage) -> None:
        try:
            event = decode_event(message.body, message.content_encoding)
        except MessageDecodeError as exc:
            log.error("dropping undecodable status event: %s", exc)
            await message.reject(requeue=False)
            return
        await self._apply(message, event)

    async def on_dead(self, message: AbstractIncomingMessage) -> None:
        """A job that exhausted its deliveries: its task fails with a clear code."""
        if not message.redelivered:  # observability: count each dead-lettered job once
            DEAD_LETTERED.inc()
        try:
            job = decode_job(message.body, message.content_encoding)
        except MessageDecodeError as exc:
            log.error("dropping undecodable dead-lettered job: %s", exc)
            await message.reject(requeue=False)
            return
        event = StatusEvent(
            task_id=job.task_id,
            snapshot_id=job.snapshot_id,
            event="failed",
            phase="dead_lettered",
            error=EventError(
                code="delivery_limit_exceeded",
                message=f"The render job failed {self.delivery_limit} deliveries in a row",
            ),
            at=dt.datetime.now(dt.UTC),
        )
        await self._apply(message, event)

    async def _apply(self, message: AbstractIncomingMessage, event: StatusEvent) -> None:
        request_id = (message.headers or {}).get("x-request-id")
        with bound(task_id=str(event.task_id), request_id=request_id):
            try:
                async with self.pool.acquire() as conn:
                    changed = await apply_event(conn, event)
            except DATABASE_DOWN as exc:
                log.warning("database unavailable, event goes back to the queue: %s", exc)
                await asyncio.sleep(RETRY_PAUSE_SECONDS)
                await message.nack(requeue=True)
                return
            except Exception:
                log.exception("status event could not be applied; dropped")
                await message.reject(requeue=False)
                return
            await message.ack()
            STATUS_EVENTS.labels(event=event.event, applied=str(changed).lower()).inc()
