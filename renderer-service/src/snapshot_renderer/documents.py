"""Documents rendered in pieces: plan, fan out, wait, assemble (issue 11).

A job whose room holds at least ``min_messages`` messages is cut into its cover and its
chunks, grouped in sections (``pieces.plan``). The cover and every section go out as section
jobs (``fanout``), so the workers of every replica render them in parallel while this job
waits without a worker. Pieces found in the caches cost nothing: a room that grew by a few
messages re-renders its open tail chunk and its cover. Then one worker stamps and assembles the
pieces (``assembly``) into the document, which the coordinator stores under the document's key
like a whole render. Progress goes out as pieces done / total, phases ``rendering`` and
``assembling``.

The page limit holds for the document: a room whose weight alone predicts more pages than the
limit (at twice the density of running text) is refused before any layout, and the document is
given up at the first piece that takes its page count over the limit.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time

from pydantic import ValidationError
from snapshot_shared.chunking import ChunkPolicy
from snapshot_shared.limits import message_weight
from snapshot_shared.messages import RenderJob, RenderOptions, SnapshotPayload

from snapshot_renderer import metrics
from snapshot_renderer.cache.memory import CachedPdf
from snapshot_renderer.coordinator import OnProgress, Produce, RenderCoordinator, Start, user_of
from snapshot_renderer.errors import BadJob, PiecesIncomplete, TooManyPages
from snapshot_renderer.fanout import Fanout, Section
from snapshot_renderer.pieces.plan import PiecePlan, split
from snapshot_renderer.pieces.stored import NotAPiece, from_entry
from snapshot_renderer.pieces.wire import SectionReply
from snapshot_renderer.render.pieces import RenderedPiece
from snapshot_renderer.render.pool import RenderPool

log = logging.getLogger(__name__)
# A page holds ~5,600 weight of running text (snapshot_shared.limits); a prediction at twice
# that density is a floor no real room goes under, so it refuses only what cannot fit.
PREDICTED_PAGE_WEIGHT = 2 * 5_600


class PiecedDocuments:
    """Renders big documents from pieces; ``RenderCoordinator.documents``."""

    def __init__(
        self,
        *,
        coordinator: RenderCoordinator,
        pool: RenderPool,
        fanout: Fanout,
        min_messages: int,
        max_pages: int,
        policy: ChunkPolicy | None = None,
    ) -> None:
        self._coordinator = coordinator
        self._pool = pool
        self._fanout = fanout
        self._min_messages = min_messages
        self._max_pages = max_pages
        self._policy = policy or ChunkPolicy()

    def wants(self, job: RenderJob) -> bool:
        """Whether ``job`` is rendered in pieces: the snapshot template, with messages shown
        and at least ``min_messages`` of them."""
        messages = job.payload.get("messages")
        return (
            job.template == "snapshot"
            and "messages" in (job.payload.get("sections") or ())
            and isinstance(messages, list)
            and len(messages) >= self._min_messages
        )

    def produce(self, job: RenderJob, on_progress: OnProgress | None) -> Produce:
        async def produce(start: Start) -> tuple[CachedPdf, float]:
            return await self._render(job, start, on_progress)

        return produce

    async def _render(
        self, job: RenderJob, start: Start, on_progress: OnProgress | None
    ) -> tuple[CachedPdf, float]:
        began = time.perf_counter()
        plan = await asyncio.to_thread(self._plan, job)  # 100,000 messages take a while
        payload, options = plan.payload, plan.options
        await start()
        total = len(plan.pieces)
        progress = _Progress(total, self._max_pages, on_progress)
        await progress.report()
        keys = await self._fanout.run(job, _sections(plan), progress.piece)
        pieces = [await self._read(key) for section in keys for key in section]
        await progress.report("assembling")
        frame = payload.model_copy(update={"messages": []})

        async def assemble() -> CachedPdf:
            result = await self._pool.assemble(
                pieces, frame, options, job.content_hash, self._max_pages
            )
            metrics.ASSEMBLY_SECONDS.observe(result.seconds)
            return CachedPdf(result.pdf, result.pages, hashlib.sha256(result.pdf).hexdigest())

        entry = await self._coordinator.in_turn(user_of(job), _nothing, assemble)
        seconds = time.perf_counter() - began
        metrics.PDF_BYTES.observe(len(entry.pdf))
        metrics.PDF_PAGES.observe(entry.pages)
        log.info(
            "assembled",
            extra={"pieces": total, "pages": entry.pages, "render_ms": round(seconds * 1000, 1)},
        )
        return entry, seconds

    def _plan(self, job: RenderJob) -> PiecePlan:
        """The job's pieces (blocking: validates and weighs every message)."""
        try:
            payload = SnapshotPayload.model_validate(job.payload)
            options = RenderOptions.model_validate(job.options)
        except ValidationError as exc:
            raise BadJob(f"invalid payload or options: {exc.error_count()} error(s)") from None
        self._refuse_predicted(payload)
        return split(payload, options, self._policy)

    def _refuse_predicted(self, payload: SnapshotPayload) -> None:
        weight = sum(message_weight(m.body) for m in payload.messages)
        predicted = weight // PREDICTED_PAGE_WEIGHT
        if predicted > self._max_pages:
            raise TooManyPages(
                f"the snapshot would have more than {predicted} pages; the limit is"
                f" {self._max_pages}"
            )

    async def _read(self, key: str) -> RenderedPiece:
        entry, _ = await self._coordinator.lookup(key, False)
        try:
            if entry is None:
                raise NotAPiece("gone from memory and disk")
            return from_entry(entry)
        except NotAPiece as exc:
            raise PiecesIncomplete(f"piece {key[:12]} cannot be assembled: {exc}") from None


class _Progress:
    """Pieces done of the total, reported as the task's progress (20-85 %), and the running
    page count against the limit."""

    def __init__(self, total: int, max_pages: int, report: OnProgress | None) -> None:
        self.total = total
        self.done = 0
        self.pages = 0
        self._max_pages = max_pages
        self._report = report

    async def piece(self, reply: SectionReply) -> None:
        self.done += 1
        self.pages += reply.pages or 0
        if self.pages > self._max_pages:
            raise TooManyPages(
                f"the snapshot has more than {self.pages - 1} pages; the limit is {self._max_pages}"
            )
        await self.report()

    async def report(self, phase: str = "rendering") -> None:
        if self._report is not None:
            await self._report(self.done, self.total, phase)


def _sections(plan: PiecePlan) -> list[Section]:
    """The cover (with the room's members) and each section (without them)."""
    frame = plan.payload.model_copy(update={"messages": []})
    bare = frame.model_copy(update={"members": []})
    return [Section(frame, [plan.cover]), *(Section(bare, s) for s in plan.sections)]


async def _nothing() -> None:
    """The assembly reports no start of its own (the document reported ``started``)."""
