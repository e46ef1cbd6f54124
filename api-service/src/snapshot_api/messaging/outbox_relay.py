"""The outbox relay: publishes render jobs written by committed transactions.

Woken right after each commit (``kick``) and also polls, so rows left behind by a crash, a
broker outage or another worker are published too. A round locks a batch of pending rows
(``FOR UPDATE SKIP LOCKED``), publishes them on the relay's own confirmed channel, each with a
timeout, and settles every row on its own in the same transaction: a confirmed row is deleted;
a row the broker refused (unroutable, nacked, the channel closed over it, no confirm while
others got theirs) counts an attempt; after ``max_attempts``, or at once when it is larger than
the broker takes, it is parked (kept, marked, for an operator) and its task fails with
``publish_failed``. A failure the row is not to blame for (the connection lost, or no
``render.jobs`` yet because no renderer has declared it) counts nothing.
A crash between the confirm and the commit re-publishes a job: the renderer treats it as a
duplicate.

Fair rendering: at most ``jobs_per_user`` jobs of one user are published and unfinished at a
time (``db/outbox.py``); that user's later rows wait in the outbox, counting no attempt, and the
relay is kicked when a task finishes (status consumer, reaper), so the next one goes out at
once. This bounds how many jobs of one user can stand in ``render.jobs`` in front of another
user's. A row whose task ended while it waited (deadline) is dropped unpublished.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from dataclasses import dataclass

import aio_pika
import asyncpg
from aio_pika.abc import AbstractChannel, AbstractExchange
from aio_pika.exceptions import AMQPChannelError, ChannelInvalidStateError, DeliveryError
from snapshot_shared.messages import EventError, StatusEvent
from snapshot_shared.topology import TopologyMissing, declare_api_side, require

from snapshot_api.background import BackgroundLoop
from snapshot_api.db import outbox
from snapshot_api.messaging.broker import Broker
from snapshot_api.messaging.job_bodies import JobBodyError, body_of
from snapshot_api.metrics import OUTBOX_PARKED, OUTBOX_PUBLISH_FAILED, OUTBOX_PUBLISHED
from snapshot_api.services.tasks import apply_event

log = logging.getLogger(__name__)
BATCH = 100


@dataclass(frozen=True)
class Failure:
    """Why one row was not published; ``kind`` says whether the row is to blame."""

    kind: str  # refused | too_large | no_body | channel | timeout | broker | no_jobs_queue
    error: str

    @property
    def hopeless(self) -> bool:
        return self.kind in ("too_large", "no_body")

    def counts(self, others_published: bool) -> bool:
        if self.kind == "timeout":  # the broker confirmed others: this row is the problem
            return others_published
        return self.kind in ("refused", "too_large", "no_body")


Outcome = Failure | None  # None: published and confirmed


class OutboxRelay(BackgroundLoop):
    name = "outbox-relay"

    def __init__(
        self,
        pool: asyncpg.Pool,
        broker: Broker,
        poll_seconds: float,
        *,
        max_attempts: int = 10,
        publish_timeout: float = 10.0,
        max_message_bytes: int = 128 * 2**20,
        jobs_per_user: int = 0,
        gzip_threshold: int | None = 1024,
    ) -> None:
        super().__init__()
        self.pool = pool
        self.broker = broker
        self.poll_seconds = poll_seconds
        self.max_attempts = max_attempts
        self.publish_timeout = publish_timeout
        self.max_message_bytes = max_message_bytes
        self.jobs_per_user = jobs_per_user
        self.gzip_threshold = gzip_threshold
        self._wake = asyncio.Event()
        self._channel: AbstractChannel | None = None
        self._exchange: AbstractExchange | None = None

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
        """Publish up to one batch of publishable jobs; return how many rows were settled
        (published, or dropped because their task is over)."""
        if self.broker.declared is None or not self.broker.is_up:
            return 0
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await outbox.lock_publishable(conn, BATCH, self.jobs_per_user)
            over = [r["id"] for r in rows if r["finished"]]
            rows = [r for r in rows if not r["finished"]]
            await outbox.delete(conn, over)
            if not rows:
                return len(over)
            outcomes = await self._publish_rows(conn, rows)
            published = [i for i, outcome in outcomes.items() if outcome is None]
            failures = {
                i: (f.error, f.hopeless)
                for i, f in outcomes.items()
                if f is not None and f.counts(bool(published))
            }
            await outbox.published(conn, published)
            for row in await outbox.record_failures(conn, failures, self.max_attempts):
                if row["parked"]:
                    await self._park(conn, row)
        OUTBOX_PUBLISHED.inc(len(published))
        OUTBOX_PUBLISH_FAILED.inc(len(failures))
        return len(published) + len(over)

    async def _bodies(
        self, conn: asyncpg.Connection, rows: list[asyncpg.Record]
    ) -> tuple[dict[int, tuple[bytes, str | None]], dict[int, Outcome]]:
        """Each row's job body (``job_bodies``), or why it has none."""
        bodies: dict[int, tuple[bytes, str | None]] = {}
        broken: dict[int, Outcome] = {}
        for row in rows:
            try:
                bodies[row["id"]] = await body_of(conn, row, self.gzip_threshold)
            except JobBodyError as exc:
                broken[row["id"]] = Failure("no_body", str(exc))
        return bodies, broken

    async def _publish_rows(
        self, conn: asyncpg.Connection, rows: list[asyncpg.Record]
    ) -> dict[int, Outcome]:
        bodies, outcomes = await self._bodies(conn, rows)
        rows = [r for r in rows if r["id"] in bodies]
        exchange = await self._open()
        done = await asyncio.gather(*(self._publish(exchange, r, bodies[r["id"]]) for r in rows))
        outcomes.update({r["id"]: o for r, o in zip(rows, done, strict=True)})
        # The broker closed the channel over one of the rows: find which by trying each alone.
        for row in rows:
            outcome = outcomes[row["id"]]
            if outcome is not None and outcome.kind == "channel":
                alone = await self._publish(await self._open(), row, bodies[row["id"]])
                if alone is not None and alone.kind == "channel":
                    alone = Failure("refused", alone.error)
                outcomes[row["id"]] = alone
        if any(o is not None and o.kind == "refused" for o in outcomes.values()):
            await self._redeclare()  # the API's deleted queues are back for the next round
            if await self._jobs_queue_missing():  # no row is to blame: wait for a renderer
                outcomes = {
                    i: Failure("no_jobs_queue", o.error)
                    if o is not None and o.kind == "refused"
                    else o
                    for i, o in outcomes.items()
                }
        return outcomes

    async def _jobs_queue_missing(self) -> bool:
        """Whether ``render.jobs`` is missing: the renderers declare it (the API's broker user
        may not), so until one has started, jobs are unroutable and wait in the outbox."""
        connection = self.broker.connection
        if connection is None:
            return False
        channel = await connection.channel()  # a failed passive declare closes its channel
        try:
            await require(channel, (self.broker.topology.jobs_queue,), "a renderer")
        except TopologyMissing as exc:
            log.warning("%s; render jobs wait in the outbox", exc)
            return True
        finally:
            with contextlib.suppress(Exception):
                await channel.close()
        return False

    async def _publish(
        self, exchange: AbstractExchange, row: asyncpg.Record, job: tuple[bytes, str | None]
    ) -> Outcome:
        body, encoding = job
        size = len(body)
        if size > self.max_message_bytes:
            return Failure("too_large", f"{size} bytes, more than {self.max_message_bytes}")
        task_id = str(row["task_id"])
        message = aio_pika.Message(
            body=body,
            content_type="application/json",
            content_encoding=encoding,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            correlation_id=task_id,
            message_id=task_id,
            reply_to=self.broker.topology.status_queue,
            headers={"x-request-id": row["request_id"] or ""},
        )
        publish = exchange.publish(message, routing_key=row["routing_key"], mandatory=True)
        try:
            await asyncio.wait_for(publish, self.publish_timeout)
        except DeliveryError as exc:  # returned as unroutable, or nacked
            return Failure("refused", f"refused by the broker: {exc}")
        except TimeoutError:
            return Failure("timeout", f"no confirm within {self.publish_timeout}s")
        except (AMQPChannelError, ChannelInvalidStateError) as exc:
            return Failure("channel", f"the broker closed the channel: {exc!r}")
        except Exception as exc:  # noqa: BLE001 - the connection: not this row's fault
            return Failure("broker", repr(exc))
        return None

    async def _open(self) -> AbstractExchange:
        """The relay's own confirmed channel (reopened after the broker closed it)."""
        connection = self.broker.connection
        if connection is None:
            raise ConnectionError("not connected to RabbitMQ")
        if self._channel is None or self._channel.is_closed or self._exchange is None:
            self._channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
            self._exchange = await self._channel.get_exchange(
                self.broker.topology.exchange, ensure=False
            )
        return self._exchange

    async def _redeclare(self) -> None:
        try:
            await self._open()
            assert self._channel is not None
            await declare_api_side(self._channel, self.broker.topology)
        except Exception as exc:  # noqa: BLE001 - best effort; the rows count their attempts
            log.warning("could not declare the topology again: %s", exc)

    async def _park(self, conn: asyncpg.Connection, row: asyncpg.Record) -> None:
        """Keep the row for an operator, and end its task: it will never be rendered."""
        OUTBOX_PARKED.inc()
        log.error(
            "outbox row parked after %d attempts: %s",
            row["attempts"],
            row["last_error"],
            extra={"task_id": str(row["task_id"]), "outbox_id": row["id"]},
        )
        event = StatusEvent(
            task_id=row["task_id"],
            snapshot_id=row["snapshot_id"],
            event="failed",
            phase="publish_failed",
            error=EventError(
                code="publish_failed",
                message=f"The render job could not be published ({row['attempts']} attempts):"
                f" {row['last_error']}"[:500],
            ),
            at=dt.datetime.now(dt.UTC),
        )
        await apply_event(conn, event)
