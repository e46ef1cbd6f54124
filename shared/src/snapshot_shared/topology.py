"""RabbitMQ names and declarations (DESIGN §5), shared so both sides declare identically.

Queues (all quorum, all under the optional prefix):

- ``render.jobs``: the render jobs; after ``delivery_limit`` deliveries, or when the renderer
  rejects a job, it is dead-lettered to ``render.jobs.dead`` (read by the API).
- ``render.jobs.retry.<n>s``: one delay queue per retry step; a job the renderer could not
  finish is copied here and comes back to ``render.jobs`` when its ``x-message-ttl`` ends.
- ``render.pieces``: the sections of big documents, rendered by any renderer replica's workers
  (renderer to renderer); each replica answers on its own ``render.pieces.reply.<id>``, an
  exclusive queue that goes away with the replica's connection.
- ``render.status``: renderer status events (read by the API); a poison event (undecodable, or
  redelivered ``status_delivery_limit`` times) goes to ``render.status.dead`` for an operator,
  and so does a dead-lettered job the API failed to apply ``status_delivery_limit`` times.

Each service declares the queues it reads, and both declare the two exchanges: the API
``render.jobs.dead``, ``render.status`` and ``render.status.dead``; the renderer ``render.jobs``
and the delay queues. RabbitMQ lets only a user who may read a queue declare it with a
dead-letter exchange, so this split is what lets each service's broker user read only its own
queues (``deploy/rabbitmq/definitions.json``). The API holds jobs in its outbox until
``render.jobs`` exists; the renderer consumes nothing until the API's queues exist.

Arguments of an existing queue cannot change: a broker still holding a queue declared by an
older release answers ``PRECONDITION_FAILED`` (``declare`` explains what to delete).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue
from aio_pika.exceptions import ChannelNotFoundEntity, ChannelPreconditionFailed

JOBS_ROUTING_KEY = "render.jobs"
STATUS_ROUTING_KEY = "render.status"
# Growing delays between a job's attempts (seconds); the last one repeats if there are more.
RETRY_DELAYS_SECONDS = (1, 5, 15, 60)
# A status event applied in a transaction that keeps failing (database down for minutes, a
# bug) is redelivered with a capped backoff this many times, then parked in render.status.dead.
STATUS_DELIVERY_LIMIT = 50
RETRY_ATTEMPT_HEADER = "x-retry-attempt"


@dataclass(frozen=True)
class Topology:
    """Exchange and queue names, with an optional prefix so test runs never collide."""

    prefix: str = ""
    delivery_limit: int = 5
    status_delivery_limit: int = STATUS_DELIVERY_LIMIT
    retry_delays_seconds: tuple[int, ...] = RETRY_DELAYS_SECONDS

    @property
    def exchange(self) -> str:
        return f"{self.prefix}snapshots"

    @property
    def dead_letter_exchange(self) -> str:
        return f"{self.prefix}snapshots.dlx"

    @property
    def jobs_queue(self) -> str:
        return f"{self.prefix}render.jobs"

    @property
    def dead_queue(self) -> str:
        return f"{self.prefix}render.jobs.dead"

    @property
    def pieces_queue(self) -> str:
        return f"{self.prefix}render.pieces"

    def pieces_reply_queue(self, renderer_id: str) -> str:
        """The reply queue of one renderer replica (exclusive to its connection); characters of
        the id other than letters, digits, ``_.-`` become ``_``."""
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", renderer_id)
        return f"{self.prefix}render.pieces.reply.{safe}"

    @property
    def status_queue(self) -> str:
        return f"{self.prefix}render.status"

    @property
    def status_dead_queue(self) -> str:
        return f"{self.prefix}render.status.dead"

    def retry_queue(self, attempt: int) -> str:
        """The delay queue a job goes to after its ``attempt``-th failed attempt (1-based)."""
        delays = self.retry_delays_seconds
        return f"{self.prefix}render.jobs.retry.{delays[min(attempt, len(delays)) - 1]}s"

    @property
    def retry_queues(self) -> tuple[str, ...]:
        return tuple(self.retry_queue(n) for n in range(1, len(self.retry_delays_seconds) + 1))

    @property
    def queues(self) -> tuple[str, ...]:
        return (
            self.jobs_queue,
            self.pieces_queue,
            self.dead_queue,
            self.status_queue,
            self.status_dead_queue,
            *self.retry_queues,
        )

    @property
    def exchanges(self) -> tuple[str, ...]:
        return (self.exchange, self.dead_letter_exchange)


@dataclass(frozen=True)
class ApiDeclared:
    exchange: AbstractExchange
    dead: AbstractQueue
    status: AbstractQueue


@dataclass(frozen=True)
class Declared:
    exchange: AbstractExchange
    jobs: AbstractQueue
    dead: AbstractQueue
    status: AbstractQueue


class TopologyConflict(RuntimeError):
    """A queue exists on the broker with other arguments (declared by an older release)."""


async def _queue(channel: AbstractChannel, name: str, arguments: dict[str, Any]) -> AbstractQueue:
    try:
        return await channel.declare_queue(
            name, durable=True, arguments={"x-queue-type": "quorum", **arguments}
        )
    except ChannelPreconditionFailed as exc:
        raise TopologyConflict(
            f"queue {name!r} exists with other arguments than this release declares"
            f" ({exc}). Its arguments cannot change in place: drain it, then delete it"
            f" (`rabbitmqctl delete_queue {name}`) and restart; see README 'Messaging topology'"
        ) from exc


async def _exchanges(channel: AbstractChannel, topology: Topology) -> AbstractExchange:
    """Both exchanges (either service may start first); returns the jobs exchange."""
    exchange = await channel.declare_exchange(
        topology.exchange, aio_pika.ExchangeType.DIRECT, durable=True
    )
    await channel.declare_exchange(
        topology.dead_letter_exchange, aio_pika.ExchangeType.DIRECT, durable=True
    )
    return exchange


async def declare_api_side(channel: AbstractChannel, topology: Topology) -> ApiDeclared:
    """The exchanges and the queues the API reads: ``render.jobs.dead``, ``render.status`` and
    ``render.status.dead`` (the one an operator reads). Declaring a queue with a
    dead-letter exchange needs *read* on the queue, so each service declares only the queues
    it consumes, and its broker user may read nothing else (README "Security")."""
    exchange = await _exchanges(channel, topology)
    # Read by the API, which requeues what it cannot apply yet: bounded like render.status
    # (RabbitMQ 4 would otherwise apply its default of 20 and drop), then parked for an operator.
    dead = await _queue(
        channel,
        topology.dead_queue,
        {
            "x-delivery-limit": topology.status_delivery_limit,
            "x-dead-letter-exchange": topology.dead_letter_exchange,
            "x-dead-letter-routing-key": STATUS_ROUTING_KEY,
        },
    )
    await dead.bind(topology.dead_letter_exchange, JOBS_ROUTING_KEY)
    status = await _queue(
        channel,
        topology.status_queue,
        {
            "x-delivery-limit": topology.status_delivery_limit,
            "x-dead-letter-exchange": topology.dead_letter_exchange,
            "x-dead-letter-routing-key": STATUS_ROUTING_KEY,
        },
    )
    status_dead = await _queue(channel, topology.status_dead_queue, {})
    await status_dead.bind(topology.dead_letter_exchange, STATUS_ROUTING_KEY)
    return ApiDeclared(exchange=exchange, dead=dead, status=status)


async def declare_renderer_side(channel: AbstractChannel, topology: Topology) -> AbstractQueue:
    """The exchanges, ``render.jobs`` (bound to the jobs exchange), ``render.pieces`` and the
    retry delay queues; returns the jobs queue. The status and dead-letter queues the renderer
    publishes to are the API's: ``require_api_side`` waits for them."""
    exchange = await _exchanges(channel, topology)
    jobs = await _queue(
        channel,
        topology.jobs_queue,
        {
            "x-delivery-limit": topology.delivery_limit,
            "x-dead-letter-exchange": topology.dead_letter_exchange,
            "x-dead-letter-routing-key": JOBS_ROUTING_KEY,
        },
    )
    await jobs.bind(exchange, JOBS_ROUTING_KEY)
    # Sections of a document: a section whose delivery keeps failing (its replica killed over
    # and over) is dropped at the limit; the document job waiting for it gives up and retries.
    await _queue(channel, topology.pieces_queue, {"x-delivery-limit": topology.delivery_limit})
    for seconds, name in zip(topology.retry_delays_seconds, topology.retry_queues, strict=True):
        await _queue(
            channel,
            name,
            {
                "x-message-ttl": seconds * 1000,
                "x-dead-letter-exchange": topology.exchange,
                "x-dead-letter-routing-key": JOBS_ROUTING_KEY,
                "x-dead-letter-strategy": "at-least-once",
                "x-overflow": "reject-publish",
            },
        )
    return jobs


class TopologyMissing(RuntimeError):
    """A queue the other service declares does not exist yet (it has not started)."""


async def require(channel: AbstractChannel, names: tuple[str, ...], declarer: str) -> None:
    """Check (passively: no permission needed) that ``names`` exist. A missing queue closes
    ``channel``: use one of its own."""
    for name in names:
        try:
            await channel.declare_queue(name, passive=True)
        except ChannelNotFoundEntity as exc:
            raise TopologyMissing(
                f"queue {name!r} does not exist yet: {declarer} declares it when it starts"
            ) from exc


async def declare(channel: AbstractChannel, topology: Topology) -> Declared:
    """Declare every exchange and queue (both sides; idempotent): what tests and an operator
    with full rights use. The services declare their own side only."""
    api = await declare_api_side(channel, topology)
    jobs = await declare_renderer_side(channel, topology)
    return Declared(exchange=api.exchange, jobs=jobs, dead=api.dead, status=api.status)


async def delete(channel: AbstractChannel, topology: Topology) -> None:
    """Remove every queue and exchange of this prefix (tests clean up after themselves)."""
    for name in topology.queues:
        await channel.queue_delete(name)
    for name in topology.exchanges:
        await channel.exchange_delete(name)
