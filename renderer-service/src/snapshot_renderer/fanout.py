"""Sending a document's sections to ``render.pieces`` and waiting for their pieces.

Each replica consumes its own exclusive reply queue (``Topology.pieces_reply_queue``); a
document run publishes its sections with ``reply_to`` set to it and a correlation id per
section, then waits for the replies without holding a worker process (the sections are
rendered by whichever replicas' workers take them, this one's included). Waiting is bounded by
``silence_seconds`` without any reply: a section whose replica died is handed out again by the
broker and answers later, but a reply lost with a connection never comes, and the document job
is better retried (every piece done by then is a cache hit).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue
from pydantic import ValidationError
from snapshot_shared.messages import RenderJob, RenderOptions, SnapshotPayload

from snapshot_renderer.errors import PiecesIncomplete, from_code
from snapshot_renderer.events import StatusPublisher
from snapshot_renderer.pieces.plan import Piece
from snapshot_renderer.pieces.wire import (
    PieceSpec,
    SectionJob,
    SectionReply,
    decode_reply,
    encode_section,
)

log = logging.getLogger(__name__)
OnPiece = Callable[[SectionReply], Awaitable[None]]


@dataclass(frozen=True)
class Section:
    """Pieces to render in order, and the snapshot frame they are rendered with."""

    payload: SnapshotPayload
    pieces: Sequence[Piece]
    after_end_y: float | None = None  # where the piece before the first one ended


def _encode(job: RenderJob, section_id: str, section: Section) -> tuple[bytes, str | None]:
    """The body of a section's job (blocking: up to 1,000 messages of JSON, gzipped)."""
    return encode_section(
        SectionJob(
            section_id=section_id,
            task_id=job.task_id,
            requested_by=job.requested_by,
            payload=section.payload,
            options=RenderOptions.model_validate(job.options),
            pieces=[PieceSpec.of(p) for p in section.pieces],
            deadline=job.deadline,
            after_end_y=section.after_end_y,
        )
    )


class Fanout:
    """Publishes sections and routes their replies to the document runs waiting for them."""

    def __init__(
        self,
        *,
        publisher: StatusPublisher,
        pieces_queue: str,
        reply_queue: str,
        silence_seconds: float,
    ) -> None:
        self._publisher = publisher
        self._pieces_queue = pieces_queue
        self._reply_queue = reply_queue
        self._silence = silence_seconds
        self._runs: dict[str, asyncio.Queue[SectionReply]] = {}
        self._queue: AbstractQueue | None = None

    async def start(self, channel: AbstractChannel) -> None:
        """Declare this replica's reply queue on ``channel`` and consume it."""
        self._queue = await channel.declare_queue(
            self._reply_queue, exclusive=True, auto_delete=True
        )
        await self._queue.consume(self._on_reply, no_ack=True)

    async def _on_reply(self, message: AbstractIncomingMessage) -> None:
        try:
            reply = decode_reply(message.body)
        except (ValidationError, ValueError):
            log.warning("undecodable section reply dropped")
            return
        run = self._runs.get(reply.section_id.rsplit(".", 1)[0])
        if run is not None:  # else: a run given up already
            run.put_nowait(reply)

    async def run(
        self, job: RenderJob, sections: Sequence[Section], on_piece: OnPiece
    ) -> list[list[str]]:
        """Render ``sections`` anywhere; the keys of their pieces, section by section.

        ``on_piece`` sees each piece's reply as it comes (progress, the page limit; it may
        raise to give the document up). A failed section raises its error."""
        run_id = uuid.uuid4().hex
        replies: asyncio.Queue[SectionReply] = asyncio.Queue()
        self._runs[run_id] = replies
        try:
            for number, section in enumerate(sections):
                await self._publish(job, f"{run_id}.{number}", section)
            return await self._collect(replies, len(sections), on_piece)
        finally:
            del self._runs[run_id]

    async def _publish(self, job: RenderJob, section_id: str, section: Section) -> None:
        body, encoding = await asyncio.to_thread(_encode, job, section_id, section)
        message = aio_pika.Message(
            body,
            content_type="application/json",
            content_encoding=encoding,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            reply_to=self._reply_queue,
            correlation_id=section_id,
        )
        await self._publisher.send(message, self._pieces_queue)

    async def _collect(
        self, replies: asyncio.Queue[SectionReply], count: int, on_piece: OnPiece
    ) -> list[list[str]]:
        done: dict[int, list[str]] = {}
        seen: set[tuple[int, int | None]] = set()  # a section sent again answers again
        while len(done) < count:
            try:
                reply = await asyncio.wait_for(replies.get(), self._silence)
            except TimeoutError:
                raise PiecesIncomplete(
                    f"no piece came back for {self._silence:g} s"
                    f" ({len(done)} of {count} sections done)"
                ) from None
            number = int(reply.section_id.rsplit(".", 1)[1])
            if number in done or (reply.event == "piece" and (number, reply.index) in seen):
                continue  # a redelivered section's answers for pieces counted already
            if reply.event == "piece":
                seen.add((number, reply.index))
                await on_piece(reply)
            elif reply.event == "done":
                done[number] = list(reply.keys)
            elif reply.error is not None:
                raise from_code(reply.error.code, reply.error.message)
        return [done[n] for n in range(count)]
