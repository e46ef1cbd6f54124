"""Consumers of ``render.status`` (renderer events) and ``render.jobs.dead`` (poison jobs).

Each event is applied in its own transaction and acknowledged only after the commit. A
``completed`` event whose artifact is not its snapshot's PDF in the store is acknowledged and
ignored (``services.tasks.accept_event``). When it
cannot be applied, the event goes back to the queue after a capped, growing pause (the quorum
queue's ``x-delivery-count`` says how often it came back already), so a database that is down,
full, read-only or restarting loses nothing; the queue's delivery limit bounds the retries of an
event that fails for good (a bug), and the broker then parks it in ``render.status.dead``. Only
an undecodable event, or one the database refuses as invalid data, is rejected at once, also to
``render.status.dead``, where an operator can see it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

import asyncpg
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage
from snapshot_shared.logging import bound
from snapshot_shared.messages import MessageDecodeError, StatusEvent, decode_event, decode_job
from snapshot_shared.topology import STATUS_DELIVERY_LIMIT, ApiDeclared

from snapshot_api.db.pool import DATABASE_DOWN
from snapshot_api.messaging.dead_letters import dead_job_event, death_reason
from snapshot_api.metrics import DEAD_LETTERED, STATUS_EVENTS, STATUS_EVENTS_RETRIED
from snapshot_api.services.tasks import accept_event

log = logging.getLogger(__name__)
RETRY_FIRST_SECONDS = 0.2
RETRY_MAX_SECONDS = 10.0
# Errors another attempt can get past: the database unreachable or restarting, out of
# connections or resources, read-only after a failover, a serialization or lock conflict.
TRANSIENT: tuple[type[BaseException], ...] = (
    *DATABASE_DOWN,
    OSError,  # refused, reset, DNS failure while a host restarts
    asyncpg.PostgresConnectionError,
    asyncpg.InsufficientResourcesError,
    asyncpg.OperatorInterventionError,
    asyncpg.TransactionRollbackError,
    asyncpg.ReadOnlySQLTransactionError,
    asyncpg.LockNotAvailableError,
    asyncpg.InvalidCachedStatementError,
)
# Errors about the event's own data: no later attempt can succeed.
PERMANENT: tuple[type[BaseException], ...] = (
    asyncpg.DataError,
    asyncpg.IntegrityConstraintViolationError,
)


def earlier_deliveries(message: AbstractIncomingMessage) -> int:
    """How often the quorum queue delivered ``message`` before (its ``x-delivery-count``)."""
    count = (message.headers or {}).get("x-delivery-count") or 0
    try:
        return max(int(str(count)), 0)
    except ValueError:
        return 0


def retry_pause(message: AbstractIncomingMessage) -> float:
    """Seconds to wait before handing ``message`` back: doubling per earlier delivery, capped."""
    deliveries = earlier_deliveries(message)
    return min(RETRY_FIRST_SECONDS * 2.0 ** min(deliveries, 16), RETRY_MAX_SECONDS)


class StatusConsumer:
    def __init__(
        self,
        pool: asyncpg.Pool,
        store_dir: Path,
        prefetch: int,
        delivery_limit: int,
        pool_size: int | None = None,
        on_finished: Callable[[], None] | None = None,
    ) -> None:
        self.pool = pool
        self.store_dir = store_dir  # completed events are checked against the stored PDF
        self.on_finished = on_finished  # called after a task reached completed or failed
        # Each event in flight holds a pool connection: more would only wait for one.
        self.prefetch = min(prefetch, pool_size) if pool_size else prefetch
        self.delivery_limit = delivery_limit

    async def attach(self, channel: AbstractChannel, declared: ApiDeclared) -> None:
        """Start consuming both queues on ``channel`` (a channel of its own, not the one the
        outbox relay publishes on), once the broker is up."""
        await channel.set_qos(prefetch_count=self.prefetch)
        status = await channel.get_queue(declared.status.name)
        dead = await channel.get_queue(declared.dead.name)
        await status.consume(self.on_status, no_ack=False)
        await dead.consume(self.on_dead, no_ack=False)

    async def on_status(self, message: AbstractIncomingMessage) -> None:
        try:
            event = decode_event(message.body, message.content_encoding)
        except MessageDecodeError as exc:
            log.error("undecodable status event dead-lettered: %s", exc)
            await message.reject(requeue=False)
            STATUS_EVENTS_RETRIED.labels(outcome="dead_lettered").inc()
            return
        await self._apply(message, event)

    async def on_dead(self, message: AbstractIncomingMessage) -> None:
        """A job the renderer rejected or that exhausted its deliveries: its task fails with a
        code saying which (``job_rejected``, ``delivery_limit_exceeded``)."""
        if not message.redelivered:  # observability: count each dead-lettered job once
            DEAD_LETTERED.inc()
        try:
            job = decode_job(message.body, message.content_encoding)
        except MessageDecodeError as exc:
            log.error("dropping undecodable dead-lettered job: %s", exc)
            await message.reject(requeue=False)
            return
        reason = death_reason(message.headers)
        await self._apply(message, dead_job_event(job, reason, self.delivery_limit))

    async def _apply(self, message: AbstractIncomingMessage, event: StatusEvent) -> None:
        request_id = (message.headers or {}).get("x-request-id")
        with bound(task_id=str(event.task_id), request_id=request_id):
            try:
                changed = await accept_event(self.pool, self.store_dir, event)
            except asyncio.CancelledError:
                raise
            except PERMANENT as exc:
                log.error("status event refused by the database; dead-lettered: %s", exc)
                await message.reject(requeue=False)
                STATUS_EVENTS_RETRIED.labels(outcome="dead_lettered").inc()
                return
            except Exception as exc:  # noqa: BLE001 - retried, bounded by the delivery limit
                await self._hand_back(message, exc)
                return
            await message.ack()
            STATUS_EVENTS.labels(event=event.event, applied=str(changed).lower()).inc()
            if changed and event.event in ("completed", "failed") and self.on_finished:
                self.on_finished()

    async def _hand_back(self, message: AbstractIncomingMessage, exc: Exception) -> None:
        pause = retry_pause(message)
        if isinstance(exc, TRANSIENT):
            log.warning("status event not applied (%s); requeued in %.1fs", exc, pause)
        else:
            log.error("status event failed; requeued in %.1fs", pause, exc_info=exc)
        await asyncio.sleep(pause)
        await message.nack(requeue=True)
        # Past the queue's delivery limit the broker dead-letters it instead of requeueing.
        last = earlier_deliveries(message) >= STATUS_DELIVERY_LIMIT
        STATUS_EVENTS_RETRIED.labels(outcome="dead_lettered" if last else "requeued").inc()
