"""RabbitMQ names and declarations (DESIGN §5), shared so both sides declare identically."""

from __future__ import annotations

from dataclasses import dataclass

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue

JOBS_ROUTING_KEY = "render.jobs"


@dataclass(frozen=True)
class Topology:
    """Exchange and queue names, with an optional prefix so test runs never collide."""

    prefix: str = ""
    delivery_limit: int = 5

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
    def status_queue(self) -> str:
        return f"{self.prefix}render.status"

    @property
    def queues(self) -> tuple[str, ...]:
        return (self.jobs_queue, self.dead_queue, self.status_queue)

    @property
    def exchanges(self) -> tuple[str, ...]:
        return (self.exchange, self.dead_letter_exchange)


@dataclass(frozen=True)
class Declared:
    exchange: AbstractExchange
    jobs: AbstractQueue
    dead: AbstractQueue
    status: AbstractQueue


async def declare(channel: AbstractChannel, topology: Topology) -> Declared:
    """Declare every exchange and queue; idempotent, and identical on both services."""
    exchange = await channel.declare_exchange(
        topology.exchange, aio_pika.ExchangeType.DIRECT, durable=True
    )
    dlx = await channel.declare_exchange(
        topology.dead_letter_exchange, aio_pika.ExchangeType.DIRECT, durable=True
    )
    jobs = await channel.declare_queue(
        topology.jobs_queue,
        durable=True,
        arguments={
            "x-queue-type": "quorum",
            "x-delivery-limit": topology.delivery_limit,
            "x-dead-letter-exchange": topology.dead_letter_exchange,
            "x-dead-letter-routing-key": JOBS_ROUTING_KEY,
        },
    )
    await jobs.bind(exchange, JOBS_ROUTING_KEY)
    dead = await channel.declare_queue(
        topology.dead_queue, durable=True, arguments={"x-queue-type": "quorum"}
    )
    await dead.bind(dlx, JOBS_ROUTING_KEY)
    status = await channel.declare_queue(
        topology.status_queue, durable=True, arguments={"x-queue-type": "quorum"}
    )
    return Declared(exchange=exchange, jobs=jobs, dead=dead, status=status)


async def delete(channel: AbstractChannel, topology: Topology) -> None:
    """Remove every queue and exchange of this prefix (tests clean up after themselves)."""
    for name in topology.queues:
        await channel.queue_delete(name)
    for name in topology.exchanges:
        await channel.exchange_delete(name)
