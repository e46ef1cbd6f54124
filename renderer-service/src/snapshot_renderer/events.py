"""Status events to the job's ``reply_to`` queue: persistent, mandatory, broker-confirmed."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage
from snapshot_shared.messages import (
    Artifact,
    EventError,
    EventName,
    StatusEvent,
    encode,
    inflate,
)
from snapshot_shared.topology import RETRY_ATTEMPT_HEADER

from snapshot_renderer.cache.memory import CachedPdf
from snapshot_renderer.errors import RendererError

CHANNEL_POLL_SECONDS = 0.1  # how often a closed publish channel is checked while it reopens


@dataclass(frozen=True)
class Target:
    """Where and for whom a job's events go."""

    task_id: UUID
    snapshot_id: UUID
    reply_to: str
    request_id: str | None = None


def salvage_target(
    body: bytes, encoding: str | None, max_bytes: int, reply_to: str
) -> Target | None:
    """Best effort: the task and snapshot ids of a body that failed to decode as a job."""
    try:
        data = json.loads(inflate(body, encoding, max_bytes))
        return Target(UUID(str(data["task_id"])), UUID(str(data["snapshot_id"])), reply_to)
    except (ValueError, TypeError, KeyError):
        return None


def attempt_of(message: AbstractIncomingMessage) -> int:
    """Which attempt this delivery is (1 for a job never retried through a delay queue)."""
    value = (message.headers or {}).get(RETRY_ATTEMPT_HEADER)
    try:
        return max(int(str(value)), 0) + 1 if value is not None else 1
    except ValueError:
        return 1


def delayed_copy(message: AbstractIncomingMessage, attempt: int) -> aio_pika.Message:
    """A copy of a job delivery for its next attempt: same body and properties, the broker's
    dead-letter headers left out, and the number of attempts made so far in a header."""
    headers = {
        k: v
        for k, v in (message.headers or {}).items()
        if not k.startswith(("x-death", "x-first-death", "x-last-death", "x-delivery-count"))
    }
    headers[RETRY_ATTEMPT_HEADER] = attempt
    return aio_pika.Message(
        message.body,
        headers=headers,
        content_type=message.content_type,
        content_encoding=message.content_encoding,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        correlation_id=message.correlation_id,
        message_id=message.message_id,
        reply_to=message.reply_to,
        type=message.type,
    )


class StatusPublisher:
    """Publishes ``StatusEvent``s on a channel opened with publisher confirms and return raises.

    ``publish`` returns only once the broker confirmed the event; an unroutable event raises
    ``aio_pika.exceptions.PublishError`` and a broker nack ``DeliveryError``.
    """

    def __init__(self, channel: AbstractChannel, renderer_id: str) -> None:
        self._channel = channel
        self._renderer_id = renderer_id

    async def publish(self, target: Target, event: EventName, **fields: Any) -> None:
        """Send one event for ``target`` and wait for the broker's confirm."""
        status = StatusEvent(
            task_id=target.task_id,
            snapshot_id=target.snapshot_id,
            event=event,
            renderer_id=self._renderer_id,
            at=dt.datetime.now(dt.UTC),
            **fields,
        )
        body, encoding = encode(status)
        headers: dict[str, Any] = {}
        if target.request_id:
            headers["x-request-id"] = target.request_id
        message = aio_pika.Message(
            body,
            content_type="application/json",
            content_encoding=encoding,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            correlation_id=str(target.task_id),
            type=f"render.status.{event}",
            headers=headers,
        )
        await self._channel.default_exchange.publish(
            message, routing_key=target.reply_to, mandatory=True
        )

    async def wait_open(self, timeout: float) -> bool:
        """Wait until the publish channel is open; ``False`` if ``timeout`` passed first.

        After a broker restart the robust connection reopens its channels one by one: the
        consume channel can deliver a job before this one is back, and a job handled then
        could report nothing and would burn its deliveries in a tight loop."""
        end = time.monotonic() + timeout
        while self._channel.is_closed:
            if time.monotonic() >= end:
                return False
            await asyncio.sleep(CHANNEL_POLL_SECONDS)
        return True

    async def send(self, message: aio_pika.Message, queue: str) -> None:
        """Publish ``message`` to ``queue`` (default exchange) and wait for the confirm."""
        await self._channel.default_exchange.publish(message, routing_key=queue, mandatory=True)

    async def progress(self, target: Target, progress: int, phase: str, **pieces: int) -> None:
        """A ``progress`` event (``started`` when ``phase`` is ``"started"``); ``pieces`` are
        ``pieces_done`` and ``pieces_total`` of a document rendered in pieces."""
        event: EventName = "started" if phase == "started" else "progress"
        await self.publish(target, event, progress=progress, phase=phase, **pieces)

    async def completed(
        self, target: Target, key: str, entry: CachedPdf, cache: str, render_ms: float
    ) -> None:
        """The terminal success event with the artifact's coordinates."""
        artifact = Artifact(
            key=key, bytes=len(entry.pdf), pages=entry.pages, pdf_sha256=entry.pdf_sha256
        )
        await self.publish(
            target,
            "completed",
            progress=100,
            phase="completed",
            cache=cache,
            artifact=artifact,
            render_ms=round(render_ms, 3),
        )

    async def failed(
        self, target: Target, error: RendererError, attempt: int | None = None
    ) -> None:
        """The terminal failure event carrying the error's stable code."""
        await self.publish(
            target,
            "failed",
            progress=100,
            phase="failed",
            attempt=attempt,
            error=EventError(code=error.code, message=error.message, retryable=error.retryable),
        )
