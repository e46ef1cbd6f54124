"""Helpers for renderer tests against the real RabbitMQ: jobs, publishing, waiting on queues.

Nothing here sleeps: every wait is a queue read with a timeout.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
)
from prometheus_client import REGISTRY
from snapshot_shared.hashing import content_hash, iso_utc
from snapshot_shared.messages import RenderJob, RenderOptions, StatusEvent, decode_event, encode
from snapshot_shared.topology import JOBS_ROUTING_KEY, Topology, declare
from support.services import AMQP_URL as AMQP_URL  # the suite's one broker URL, re-exported
from support.services import remove_topology
from support.waiting import until

TERMINAL = ("completed", "failed")


@asynccontextmanager
async def declared_channel(topology: Topology) -> AsyncIterator[AbstractChannel]:
    """A confirmed channel with ``topology`` declared; the topology is deleted afterwards,
    once the channel's connection is closed (see ``remove_topology``)."""
    connection = await aio_pika.connect_robust(AMQP_URL)
    try:
        chan = await connection.channel(publisher_confirms=True, on_return_raises=True)
        await declare(chan, topology)
        yield chan
    finally:
        await connection.close()
        await remove_topology(topology)


def make_payload(n_messages: int = 5, seed: int = 1, name: str = "Design review") -> dict[str, Any]:
    """A room payload shaped like the API's: canonical timestamps, members and messages."""
    base = dt.datetime(2026, 11, 24, 8, 0, tzinfo=dt.UTC)
    members = [
        {
            "user_id": f"user-{i}",
            "display_name": f"Person {i}",
            "role": ("owner", "editor", "viewer")[i % 3],
            "joined_at": iso_utc(base),
        }
        for i in range(3)
    ]
    messages = [
        {
            "id": str(uuid.uuid5(uuid.NAMESPACE_OID, f"{seed}-{i}")),
            "author_id": f"user-{i % 3}",
            "author_name": f"Person {i % 3}",
            "created_at": iso_utc(base + dt.timedelta(minutes=17 * i)),
            "body": f"Message number {i} of room {seed}.",
            "kind": ("message", "note", "decision")[i % 3],
        }
        for i in range(n_messages)
    ]
    return {
        "room": {"id": str(uuid.UUID(int=seed)), "name": name, "created_at": iso_utc(base)},
        "sections": ["members", "messages"],
        "members": members,
        "messages": messages,
        "as_of": messages[-1]["created_at"] if messages else None,
    }


def make_job(
    payload: dict[str, Any],
    options: dict[str, Any] | None = None,
    template: str = "snapshot",
    **fields: Any,
) -> RenderJob:
    """A RenderJob whose content hash matches its content (unless ``content_hash`` is given)."""
    options = options if options is not None else RenderOptions().model_dump(mode="json")
    values: dict[str, Any] = {
        "task_id": uuid.uuid4(),
        "snapshot_id": uuid.uuid4(),
        "content_hash": content_hash(payload, options, template),
        "template": template,
        "options": options,
        "payload": payload,
        "requested_at": dt.datetime.now(dt.UTC),
        "request_id": f"req-{uuid.uuid4().hex[:8]}",
        **fields,
    }
    return RenderJob(**values)


async def publish_body(
    exchange: AbstractExchange,
    body: bytes,
    reply_to: str,
    *,
    encoding: str | None = None,
    correlation_id: str | None = None,
    request_id: str | None = None,
) -> None:
    """Publish raw job bytes the way the API does (persistent, mandatory, confirmed)."""
    message = aio_pika.Message(
        body,
        content_type="application/json",
        content_encoding=encoding,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        reply_to=reply_to,
        correlation_id=correlation_id,
        headers={"x-request-id": request_id} if request_id else {},
    )
    await exchange.publish(message, routing_key=JOBS_ROUTING_KEY, mandatory=True)


async def publish_job(
    exchange: AbstractExchange, job: RenderJob, reply_to: str, *, gzip: bool = False
) -> None:
    """Publish a RenderJob, gzip-compressed when asked."""
    body, encoding = encode(job, gzip_threshold=0 if gzip else None)
    await publish_body(
        exchange,
        body,
        reply_to,
        encoding=encoding,
        correlation_id=str(job.task_id),
        request_id=job.request_id,
    )


def outcomes(outcome: str) -> float:
    """``snapshot_renderer_job_outcomes_total`` of this process for ``outcome``, all codes."""
    return sum(
        sample.value
        for metric in REGISTRY.collect()
        if metric.name == "snapshot_renderer_job_outcomes"
        for sample in metric.samples
        if sample.name.endswith("_total") and sample.labels.get("outcome") == outcome
    )


@dataclass
class Received:
    """One status event with the AMQP properties it arrived with."""

    event: StatusEvent
    correlation_id: str | None
    headers: dict[str, Any]


@dataclass
class QueueReader:
    """Consumes a queue into an asyncio.Queue so tests can await messages with a timeout."""

    queue: AbstractQueue
    inbox: asyncio.Queue[AbstractIncomingMessage] = field(default_factory=asyncio.Queue)

    async def start(self) -> QueueReader:
        async def on_message(message: AbstractIncomingMessage) -> None:
            await message.ack()
            await self.inbox.put(message)

        await self.queue.consume(on_message)
        return self

    async def next(self, timeout: float = 60) -> AbstractIncomingMessage:
        return await asyncio.wait_for(self.inbox.get(), timeout)


@dataclass
class EventCollector:
    """Status events grouped by task id, read from the status queue."""

    reader: QueueReader
    pending: dict[str, list[Received]] = field(default_factory=dict)

    def _drain(self) -> None:
        """Move every event received so far into ``pending``."""
        while not self.reader.inbox.empty():
            message = self.reader.inbox.get_nowait()
            event = decode_event(message.body, message.content_encoding)
            received = Received(event, message.correlation_id, dict(message.headers or {}))
            self.pending.setdefault(str(event.task_id), []).append(received)

    def _seen(self, task_id: uuid.UUID, check: Callable[[StatusEvent], bool]) -> bool:
        self._drain()
        return any(check(r.event) for r in self.pending.get(str(task_id), []))

    async def until_phase(self, task_id: uuid.UUID, phase: str, timeout: float = 60) -> None:
        """Wait until ``task_id`` has reported ``phase`` (its events stay pending)."""

        async def reported() -> bool:
            return self._seen(task_id, lambda event: event.phase == phase)

        await until(reported, timeout, f"task {task_id} to report phase {phase!r}")

    async def first_in_phase(
        self, task_ids: list[uuid.UUID], phase: str, timeout: float = 60
    ) -> uuid.UUID:
        """Wait until one of ``task_ids`` has reported ``phase``; return that one (the first
        in ``task_ids`` order if several have)."""

        async def reported() -> uuid.UUID | None:
            return next(
                (t for t in task_ids if self._seen(t, lambda event: event.phase == phase)), None
            )

        return await until(reported, timeout, f"one of {len(task_ids)} tasks in phase {phase!r}")

    async def until_terminal(self, task_id: uuid.UUID, timeout: float = 120) -> list[Received]:
        """All events of ``task_id`` up to and including its completed/failed event."""

        async def ended() -> bool:
            return self._seen(task_id, lambda event: event.event in TERMINAL)

        await until(ended, timeout, f"a completed/failed event of task {task_id}")
        events = self.pending.pop(str(task_id))
        end = next(i for i, r in enumerate(events) if r.event.event in TERMINAL) + 1
        if events[end:]:  # later events (a duplicate, say) stay for the next call
            self.pending[str(task_id)] = events[end:]
        return events[:end]
