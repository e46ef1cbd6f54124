"""The ``render.pieces`` consumer: renders the sections other replicas' document jobs send.

A section's pieces are taken in order: each piece's key follows from where the piece before it
ended (``pieces.keys.Seam``), so a piece is looked up in memory and on disk, and rendered only
on a miss, once across replicas (``RenderCoordinator.piece_once``: the per-key lock), in a fair
turn of the document's user. Every piece done is answered on the sender's reply queue, then the
section's end (``done``, or ``failed`` with the error's code). The delivery is acked once the
answer is sent; should the sender be gone (its replica died and the document job went back to
the queue), the pieces are rendered anyway: its next attempt finds them in the store.
"""

from __future__ import annotations

import asyncio
import logging

import aio_pika
from aio_pika.abc import AbstractIncomingMessage
from aio_pika.exceptions import PublishError
from snapshot_shared.messages import RenderOptions, SnapshotPayload

from snapshot_renderer import metrics
from snapshot_renderer.cache.memory import CachedPdf
from snapshot_renderer.coordinator import RenderCoordinator
from snapshot_renderer.errors import PiecesIncomplete, RendererError, check_deadline
from snapshot_renderer.events import StatusPublisher
from snapshot_renderer.fair_queue import QueueClosed
from snapshot_renderer.pieces.keys import Seam, piece_key
from snapshot_renderer.pieces.plan import Piece
from snapshot_renderer.pieces.stored import from_entry, to_entry
from snapshot_renderer.pieces.wire import (
    PieceError,
    SectionJob,
    SectionReply,
    decode_section,
)
from snapshot_renderer.render.pool import RenderPool

log = logging.getLogger(__name__)


REPLY_CHANNEL_WAIT_SECONDS = 30.0
# A reply the broker cannot route may only be early: after a reconnect, the sender's reply
# queue is declared again when its channel is restored, in no set order with ours. It is sent
# again after these pauses (4.4 s in all) before the sender is taken for gone.
REPLY_ROUTE_DELAYS = (0.1, 0.3, 1.0, 3.0)


class _ReplyLost(Exception):
    """A reply could not be sent (the channel is closed): the section is handed back."""


class SectionHandler:
    """Handles deliveries from ``render.pieces``; one instance per renderer process."""

    def __init__(
        self,
        *,
        coordinator: RenderCoordinator,
        pool: RenderPool,
        publisher: StatusPublisher,
        fingerprint: str,
        max_bytes: int,
    ) -> None:
        self._coordinator = coordinator
        self._pool = pool
        self._publisher = publisher
        self._fingerprint = fingerprint
        self._max_bytes = max_bytes
        self.active = 0
        self.taken = 0  # pieces of section jobs this replica took (rendered or found cached)
        self.rendered = 0  # pieces this replica rendered (not found in a cache)

    async def __call__(self, message: AbstractIncomingMessage) -> None:
        """The ``queue.consume`` callback."""
        self.active += 1
        try:
            try:
                job = await asyncio.to_thread(
                    decode_section, message.body, message.content_encoding, self._max_bytes
                )
            except ValueError as exc:
                log.warning("undecodable section dropped: %s", str(exc)[:300])
                await message.reject(requeue=False)
                return
            if await self._section(job, message.reply_to or ""):
                await message.ack()
                return
        except Exception as exc:  # noqa: BLE001 - a reply or the ack could not be sent
            log.warning("section not finished (%s: %s); handed back", type(exc).__name__, exc)
        finally:
            self.active -= 1
        await self._hand_back(message)

    @staticmethod
    async def _hand_back(message: AbstractIncomingMessage) -> None:
        """Requeue the section (its finished pieces are cache hits when it comes back); if the
        channel is gone, the broker requeues it anyway."""
        if message.processed:
            return
        try:
            await message.nack(requeue=True)
        except Exception as exc:  # noqa: BLE001
            log.info("could not requeue the section (%s); the broker will", exc)

    async def _section(self, job: SectionJob, reply_to: str) -> bool:
        """Render the section and answer; ``False`` if the renderer is shutting down before
        the section is done (it goes back to the queue for another replica)."""
        keys: list[str] = []
        try:
            end_y = job.after_end_y
            for index, spec in enumerate(job.pieces):
                check_deadline(job.deadline)
                piece = spec.piece()
                seam = Seam.after(piece, end_y)
                key = piece_key(piece, job.payload, job.options, seam, self._fingerprint)
                entry, cache = await self._piece(job, piece, seam, key)
                end_y = from_entry(entry).end_y
                keys.append(key)
                self.taken += 1
                self.rendered += cache == "miss"
                metrics.PIECES.labels(cache).inc()
                if not await self._reply(
                    reply_to, job, "piece", index=index, key=key, pages=entry.pages, cache=cache
                ):
                    reply_to = ""  # the sender is gone: the rest only goes to the store
        except (QueueClosed, _ReplyLost):
            return False
        except Exception as exc:  # every error is answered: the sender must not wait in vain
            if not isinstance(exc, RendererError):
                log.exception("unexpected error in a section")
                exc = PiecesIncomplete(f"a section failed: {type(exc).__name__}")
            log.warning("section failed: %s", exc.message, extra={"code": exc.code})
            error = PieceError(code=exc.code, message=exc.message, retryable=exc.retryable)
            await self._reply(reply_to, job, "failed", error=error)
            return True
        await self._reply(reply_to, job, "done", keys=keys)
        return True

    async def _piece(
        self, job: SectionJob, piece: Piece, seam: Seam, key: str
    ) -> tuple[CachedPdf, str]:
        user = job.requested_by if job.requested_by is not None else f"task:{job.task_id}"
        return await piece_once(
            self._coordinator, self._pool, key, user, job.payload, job.options, piece, seam
        )

    async def _reply(self, reply_to: str, job: SectionJob, event: str, **fields: object) -> bool:
        """Answer the sender; ``False`` if it is gone (its reply queue stays unroutable past
        ``REPLY_ROUTE_DELAYS``), which is not an error here; a closed channel (a broker restart)
        is ``_ReplyLost``: the section goes back to the queue and answers again (the sender's
        reply queue comes back with its connection)."""
        if not reply_to:
            return False
        if not await self._publisher.wait_open(REPLY_CHANNEL_WAIT_SECONDS):
            raise _ReplyLost("the reply channel stayed closed")
        reply = SectionReply(section_id=job.section_id, event=event, **fields)  # type: ignore[arg-type]
        message = aio_pika.Message(
            reply.model_dump_json().encode(),
            content_type="application/json",
            correlation_id=job.section_id,
        )
        for delay in (*REPLY_ROUTE_DELAYS, None):
            try:
                await self._publisher.send(message, reply_to)
                return True
            except PublishError:
                if delay is None:
                    break
                await asyncio.sleep(delay)  # a bounded wait for a queue declared again
            except Exception as exc:  # noqa: BLE001 - a channel closed under the publish
                raise _ReplyLost(f"{type(exc).__name__}: {exc}") from exc
        log.info("the section's sender is gone; its pieces stay in the store")
        return False


async def piece_once(
    coordinator: RenderCoordinator,
    pool: RenderPool,
    key: str,
    user: str,
    payload: SnapshotPayload,
    options: RenderOptions,
    piece: Piece,
    seam: Seam,
) -> tuple[CachedPdf, str]:
    """The piece ``key`` (``piece`` of ``payload`` at ``seam``) from memory or disk, or
    rendered once in a worker, in a fair turn of ``user``'s; with its cache outcome."""

    async def render() -> CachedPdf:
        result = await pool.render_piece(payload, options, piece, seam)
        metrics.PIECE_RENDER_SECONDS.observe(result.seconds)
        return to_entry(result.piece)

    return await coordinator.piece_once(key, user, render)
