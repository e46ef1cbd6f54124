"""The render-job consumer, a thin AMQP adapter: decode, verify, report, settle.

Where the PDF comes from (memory, disk, one render per key, the per-key lock) is the
``RenderCoordinator``'s business (``coordinator.py``); this module decodes and verifies the
job, checks its deadline, reports status events through the publisher and settles the delivery.

Errors are translated to broker actions in exactly one place (``_settle``): a permanent
``RendererError`` ends the task with a ``failed`` event and an ack; a retryable one is copied
to the delay queue of its attempt (``render.jobs.retry.<n>s``, whose TTL sends it back to
``render.jobs``) with its attempt count in a header, and the original is acked only once the
broker confirmed the copy; after ``delivery_limit`` attempts the task fails with the last
error. An undecodable body is rejected to the dead-letter exchange. A job is acked only after
its terminal event (or its delayed copy) was confirmed by the broker. A miss still waiting for
its fair turn when the renderer shuts down is handed back to the queue at once.
"""

from __future__ import annotations

import asyncio
import logging
import time

from aio_pika.abc import AbstractIncomingMessage
from aio_pika.exceptions import AMQPError, PublishError
from snapshot_shared.hashing import payload_content_hash
from snapshot_shared.limits import SnapshotLimits
from snapshot_shared.logging import bound
from snapshot_shared.messages import MessageDecodeError, RenderJob, decode_job
from snapshot_shared.topology import Topology

from snapshot_renderer import metrics
from snapshot_renderer.coordinator import RenderCoordinator
from snapshot_renderer.errors import BadJob, RendererError, check_deadline, gave_up
from snapshot_renderer.events import (
    StatusPublisher,
    Target,
    attempt_of,
    delayed_copy,
    salvage_target,
)
from snapshot_renderer.fair_queue import QueueClosed
from snapshot_renderer.render.fingerprint import job_render_key

# Bodies up to this size are decoded and hashed on the event loop (well under a millisecond
# for a gzipped 100-message room); larger ones in a thread, so heartbeats and other jobs go on.
INLINE_BODY_BYTES = 16 * 1024

log = logging.getLogger(__name__)


def _decode_and_hash(
    body: bytes, encoding: str | None, max_bytes: int, snapshot_limits: SnapshotLimits | None
) -> tuple[RenderJob, str]:
    """The job (refused when over ``snapshot_limits``), and the content hash of what it
    actually carries, by the job's formula (``hash_version``)."""
    job = decode_job(body, encoding, max_bytes, snapshot_limits)
    try:
        actual = payload_content_hash(job.payload, job.options, job.template, job.hash_version)
        return job, actual
    except (TypeError, ValueError) as exc:  # e.g. NaN in the payload: not canonical JSON
        raise MessageDecodeError(f"payload is not canonical JSON: {exc}") from exc


class PieceProgress:
    """Reports a document's pieces done / total as ``progress`` events between 20 and 85 %,
    once per percent or phase (a room of thousands of pieces sends at most ~70 events)."""

    def __init__(self, publisher: StatusPublisher, target: Target) -> None:
        self._publisher = publisher
        self._target = target
        self._last: tuple[int, str] | None = None

    async def __call__(self, done: int, total: int, phase: str) -> None:
        percent = 20 + (65 * done) // max(total, 1)
        if (percent, phase) == self._last and done not in (0, total):
            return
        self._last = (percent, phase)
        await self._publisher.progress(
            self._target, percent, phase, pieces_done=done, pieces_total=total
        )


class JobHandler:
    """Handles deliveries from the jobs queue; one instance per renderer process."""

    def __init__(
        self,
        *,
        coordinator: RenderCoordinator,
        publisher: StatusPublisher,
        fingerprint: str,
        default_reply_to: str,
        max_job_bytes: int,
        topology: Topology,
        snapshot_limits: SnapshotLimits | None = None,
        channel_wait_seconds: float = 30.0,
    ) -> None:
        self._coordinator = coordinator
        self._channel_wait = channel_wait_seconds
        self._publisher = publisher
        self._fingerprint = fingerprint
        self._default_reply_to = default_reply_to
        self._max_job_bytes = max_job_bytes
        self._snapshot_limits = snapshot_limits
        self._topology = topology
        self._active = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def active(self) -> int:
        """Deliveries being handled right now."""
        return self._active

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until no delivery is being handled; ``False`` if ``timeout`` passed first."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def __call__(self, message: AbstractIncomingMessage) -> None:
        """The ``queue.consume`` callback."""
        self._active += 1
        self._idle.clear()
        metrics.JOBS_IN_FLIGHT.inc()
        try:
            if await self._publisher.wait_open(self._channel_wait):
                await self._handle(message)
            else:
                log.warning("status channel still closed; the job is handed back to the queue")
                await self._hand_back(message)
        except Exception:
            log.exception("unexpected error; the job is handed back to the queue")
            await self._hand_back(message)
        finally:
            self._active -= 1
            metrics.JOBS_IN_FLIGHT.dec()
            if self._active == 0:
                self._idle.set()

    async def _handle(self, message: AbstractIncomingMessage) -> None:
        reply_to = message.reply_to or self._default_reply_to
        args = (
            message.body,
            message.content_encoding,
            self._max_job_bytes,
            self._snapshot_limits,
        )
        try:
            if len(message.body) <= INLINE_BODY_BYTES:
                job, actual = _decode_and_hash(*args)
            else:
                job, actual = await asyncio.to_thread(_decode_and_hash, *args)
        except MessageDecodeError as exc:
            await self._reject_undecodable(message, reply_to, exc)
            return
        header_id = (message.headers or {}).get("x-request-id")
        request_id = job.request_id or (str(header_id) if header_id else None)
        target = Target(job.task_id, job.snapshot_id, reply_to, request_id)
        with bound(task_id=str(job.task_id), request_id=request_id):
            error: BaseException | None = None
            try:
                await self._process(job, actual, target)
            except Exception as exc:  # every outcome is settled below
                error = exc
            await self._settle(message, target, error, attempt_of(message))

    async def _process(self, job: RenderJob, actual: str, target: Target) -> None:
        """Everything between decoding and the terminal ``completed`` event."""
        if actual != job.content_hash:
            raise BadJob("content hash does not match the job's payload, options and template")
        key = job_render_key(job.content_hash, self._fingerprint)
        started = time.perf_counter()
        entry, cache = await self._coordinator.lookup(key, job.verify_store)
        render_ms = (time.perf_counter() - started) * 1000
        if entry is None:  # a hit reports only ``completed``: it is done before anyone polls
            check_deadline(job.deadline)
            entry, cache, render_ms = await self._coordinator.render_once(
                key,
                job,
                lambda: self._storing(target),
                lambda: self._starting(job, target),
                PieceProgress(self._publisher, target),
            )
        await self._publisher.completed(target, key, entry, cache, render_ms)
        log.info("job completed", extra={"cache": cache, "key": key, "pages": entry.pages})

    async def _starting(self, job: RenderJob, target: Target) -> None:
        """The render starts (a miss may have waited for its user's fair turn): unless the
        deadline passed meanwhile, report ``started``; the task leaves ``queued`` only now."""
        check_deadline(job.deadline)
        await self._publisher.progress(target, 5, "started")
        await self._publisher.progress(target, 20, "rendering")

    async def _storing(self, target: Target) -> None:
        """Report the ``storing`` phase once a fresh PDF is stored (advisory: never fails)."""
        try:
            await asyncio.wait_for(self._publisher.progress(target, 90, "storing"), 10)
        except Exception as exc:  # noqa: BLE001
            log.warning("could not report progress: %s", exc)

    async def _settle(
        self,
        message: AbstractIncomingMessage,
        target: Target,
        error: BaseException | None,
        attempt: int,
    ) -> None:
        """Ack, fail, retry or dead-letter a delivery: the one place errors become actions."""
        try:
            if isinstance(error, PublishError):
                await self._dead_letter(message, target)
            elif isinstance(error, QueueClosed):  # shutting down before its turn came
                log.info("shutting down before the job's turn to render; handed back")
                await self._hand_back(message)
            elif error is None:
                await message.ack()
                metrics.JOB_OUTCOMES.labels("completed", "").inc()
            elif isinstance(error, RendererError) and not error.retryable:
                await self._fail(message, target, error, attempt)
            elif attempt >= self._topology.delivery_limit:
                await self._fail(message, target, gave_up(error, attempt), attempt)
            else:
                await self._retry(message, error, attempt)
        except PublishError:
            await self._dead_letter(message, target)
        except AMQPError:
            log.exception("could not report the job's outcome; handing it back")
            await self._retry(message, None, attempt)

    async def _fail(
        self, message: AbstractIncomingMessage, target: Target, error: RendererError, attempt: int
    ) -> None:
        log.warning("job failed: %s", error.message, extra={"code": error.code})
        await self._publisher.failed(target, error, attempt)
        await message.ack()
        metrics.JOB_OUTCOMES.labels("failed", error.code).inc()

    async def _dead_letter(self, message: AbstractIncomingMessage, target: Target) -> None:
        """The status queue is gone: no event can be delivered, so dead-letter the job."""
        log.error("status queue %r does not exist; dead-lettering the job", target.reply_to)
        await message.reject(requeue=False)
        metrics.JOB_OUTCOMES.labels("rejected", "unroutable").inc()

    async def _retry(
        self, message: AbstractIncomingMessage, error: BaseException | None, attempt: int
    ) -> None:
        """Try the job again later: a copy goes to the delay queue of this attempt, and the
        original is acked once the broker confirmed the copy. Should the copy fail, the job is
        handed straight back (bounded by the queue's delivery limit)."""
        code = error.code if isinstance(error, RendererError) else "internal"
        queue = self._topology.retry_queue(attempt)
        if error is not None and not isinstance(error, RendererError | AMQPError):
            log.error("unexpected error; job retried via %s", queue, exc_info=error)
        elif error is not None:
            log.warning("transient error, job retried via %s: %s", queue, error)
        try:
            await self._publisher.send(delayed_copy(message, attempt), queue)
            await message.ack()
        except AMQPError as exc:
            log.warning("could not delay the job (%s); handing it straight back", exc)
            await self._hand_back(message)
        metrics.JOB_OUTCOMES.labels("retried", code).inc()

    async def _hand_back(self, message: AbstractIncomingMessage) -> None:
        """Requeue a delivery not settled yet (best effort: a closed channel requeues it)."""
        if message.processed:
            return
        try:
            await message.nack(requeue=True)
        except Exception as exc:  # noqa: BLE001 - the channel is gone: the broker requeues it
            log.warning("could not nack (%s); the broker requeues the job", exc)

    async def _reject_undecodable(
        self, message: AbstractIncomingMessage, reply_to: str, exc: MessageDecodeError
    ) -> None:
        """Report ``bad_job`` if the ids are readable, then dead-letter the delivery."""
        log.warning("undecodable job dead-lettered: %s", str(exc)[:300])
        target = salvage_target(
            message.body, message.content_encoding, self._max_job_bytes, reply_to
        )
        if target is not None:
            try:
                await self._publisher.failed(target, BadJob(f"undecodable job: {str(exc)[:300]}"))
            except AMQPError:
                log.exception("could not report the undecodable job")
        await message.reject(requeue=False)
        metrics.JOB_OUTCOMES.labels("rejected", "bad_job").inc()
