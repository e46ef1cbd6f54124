"""Documents rendered in pieces: plan, fan out, wait, assemble (issue 11).

A job whose room holds at least ``min_messages`` messages is cut into its cover and its
chunks, grouped in sections (``pieces.plan``). The cover, which changes with every snapshot, is
rendered here at once in a borrowed turn (``_cover``), and on a re-snapshot the stamp too
(``_stamp_ahead``). Meanwhile this job walks each section's chain in the caches (a piece's key
follows from where the piece before it ended); each section from its first missing piece on
goes out as a section job (``fanout``), longest first, so the workers of every replica render
them in parallel while this job waits without a worker. Pieces found in the caches cost
nothing, not even a message: a room that grew by a few messages sends one section job, its
new step (``plan.TAIL_STEP``). Then one worker stamps and assembles the pieces
(``assembly``) into the document, which the coordinator stores under the document's key like
a whole render. Progress goes out as pieces done / total, phases ``rendering`` and
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
from collections import OrderedDict
from uuid import UUID

from pydantic import ValidationError
from snapshot_shared.chunking import ChunkPolicy
from snapshot_shared.limits import message_weight
from snapshot_shared.messages import RenderJob, RenderOptions, SnapshotPayload

from snapshot_renderer import metrics
from snapshot_renderer.cache.memory import CachedPdf
from snapshot_renderer.coordinator import OnProgress, Produce, RenderCoordinator, Start, user_of
from snapshot_renderer.document_progress import Phases, Progress
from snapshot_renderer.errors import BadJob, PiecesIncomplete, TooManyPages
from snapshot_renderer.fanout import Fanout, Section
from snapshot_renderer.pieces.keys import Seam, piece_key
from snapshot_renderer.pieces.plan import PiecePlan, split
from snapshot_renderer.pieces.stored import NotAPiece, from_entry
from snapshot_renderer.render.piece_jobs import Stamp
from snapshot_renderer.render.pieces import RenderedPiece
from snapshot_renderer.render.pool import RenderPool
from snapshot_renderer.sections import piece_once

log = logging.getLogger(__name__)
# A page holds ~5,600 weight of running text (snapshot_shared.limits); a prediction at twice
# that density is a floor no real room goes under, so it refuses only what cannot fit.
PREDICTED_PAGE_WEIGHT = 2 * 5_600
ROOMS_REMEMBERED = 10_000  # rooms whose last page count is kept (for the stamp ahead)


class PiecedDocuments:
    """Renders big documents from pieces; ``RenderCoordinator.documents``."""

    def __init__(
        self,
        *,
        coordinator: RenderCoordinator,
        pool: RenderPool,
        fanout: Fanout,
        fingerprint: str,
        min_messages: int,
        max_pages: int,
        max_weight: int | None = None,
        policy: ChunkPolicy | None = None,
    ) -> None:
        self._coordinator = coordinator
        self._pool = pool
        self._fanout = fanout
        self._fingerprint = fingerprint
        self._pages: OrderedDict[UUID, int] = OrderedDict()  # room -> its last document's pages
        self.stamps_ahead = 0  # assemblies that used a stamp rendered ahead
        self._min_messages = min_messages
        self._max_pages = max_pages
        self._max_weight = max_weight  # the consumer refuses heavier jobs before they get here
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
        stamp = self._stamp_ahead(job)
        plan = await asyncio.to_thread(self._plan, job)  # 100,000 messages take a while
        payload, options = plan.payload, plan.options
        cover = self._cover(job, plan)
        phases = Phases()
        await start()
        total = len(plan.pieces)
        progress = Progress(total, self._max_pages, on_progress)
        await progress.report()
        found = [await self._cached(section, options, progress) for section in _sections(plan)]
        await progress.report()  # once for every piece found: each event costs a round trip
        phases.mark("cached")
        missing = [(n, rest) for n, (_, rest) in enumerate(found) if rest is not None]
        missing.sort(key=lambda item: -_weight(item[1]))  # longest first: even work at the end
        sent = await self._fanout.run(job, [rest for _, rest in missing], progress.piece)
        keys = {n: section_keys for (n, _), section_keys in zip(missing, sent, strict=True)}
        phases.mark("fanout")
        covered, cache = await cover
        metrics.PIECES.labels(cache).inc()
        pieces: list[RenderedPiece] = [_piece("cover", covered)]
        progress.found(pieces[0].pages)
        for n, (prefix, _) in enumerate(found):
            pieces += prefix
            pieces += [await self._read(key) for key in keys.get(n, ())]
        await progress.report("assembling")
        frame = payload.model_copy(update={"messages": []})

        ahead = await _finished(stamp)
        self.stamps_ahead += ahead is not None
        phases.mark("read")

        async def assemble() -> CachedPdf:
            result = await self._pool.assemble(
                pieces, frame, options, job.content_hash, self._max_pages, ahead
            )
            metrics.ASSEMBLY_SECONDS.observe(result.seconds)
            return CachedPdf(result.pdf, result.pages, hashlib.sha256(result.pdf).hexdigest())

        entry = await self._coordinator.in_turn(user_of(job), _nothing, assemble)
        phases.mark("assembly")
        self._remember_pages(plan.payload.room.id, entry.pages)
        seconds = time.perf_counter() - began
        metrics.PDF_BYTES.observe(len(entry.pdf))
        metrics.PDF_PAGES.observe(entry.pages)
        log.info(
            "assembled",
            extra={
                "pieces": total,
                "sent": sum(len(rest.pieces) for _, rest in missing),
                "stamp_ahead": ahead is not None,
                "pages": entry.pages,
                "render_ms": round(seconds * 1000, 1),
                "plan_ms": round((phases.began - began) * 1000, 1),
                **phases.ms,
            },
        )
        return entry, seconds

    def _cover(self, job: RenderJob, plan: PiecePlan) -> asyncio.Task[tuple[CachedPdf, str]]:
        """The cover, rendered here at once (a piece like the others: from the caches, or
        rendered once under its key) while the chunks are looked up and fanned out: it changes
        with every snapshot (as-of time, message count), and sent through ``render.pieces``
        after the cache walk it started as late as the walk ended (13-35 ms into the bench's
        re-snapshots)."""
        frame = plan.payload.model_copy(update={"messages": []})
        seam = Seam()
        key = piece_key(plan.cover, frame, plan.options, seam, self._fingerprint)
        task = asyncio.create_task(
            piece_once(
                self._coordinator,
                self._pool,
                key,
                user_of(job),
                frame,
                plan.options,
                plan.cover,
                seam,
            )
        )
        task.add_done_callback(_retrieved)  # awaited unless the document fails first
        return task

    def _stamp_ahead(self, job: RenderJob) -> asyncio.Task[Stamp] | None:
        """The stamp document rendered now, while the job is planned and its pieces render,
        when the room's last document here says how many pages to expect (a re-snapshot): one
        worker call less after the pieces. A stamp for a total with other digits is not used
        (the assembly renders its own)."""
        try:
            frame = SnapshotPayload.model_validate({**job.payload, "messages": []})
            options = RenderOptions.model_validate(job.options)
        except ValidationError:
            return None  # the plan reports it
        pages = self._pages.get(frame.room.id)
        if pages is None:
            return None
        self._pages.move_to_end(frame.room.id)

        async def render() -> Stamp:
            return await self._pool.render_stamp(frame, options, pages)

        task = asyncio.create_task(
            self._coordinator.in_turn(user_of(job), _nothing, render, borrow=True)
        )
        # Never cancelled (a worker call must finish); its error is only logged.
        task.add_done_callback(_log_failure)
        return task

    def _remember_pages(self, room: UUID, pages: int) -> None:
        self._pages[room] = pages
        self._pages.move_to_end(room)
        while len(self._pages) > ROOMS_REMEMBERED:
            self._pages.popitem(last=False)

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
        if self._max_weight is not None and self._max_weight // PREDICTED_PAGE_WEIGHT <= (
            self._max_pages
        ):
            return  # no job within the weight limit can be predicted over the page limit
        weight = sum(message_weight(m.body) for m in payload.messages)
        predicted = weight // PREDICTED_PAGE_WEIGHT
        if predicted > self._max_pages:
            raise TooManyPages(
                f"the snapshot would have more than {predicted} pages; the limit is"
                f" {self._max_pages}"
            )

    async def _cached(
        self, section: Section, options: RenderOptions, progress: Progress
    ) -> tuple[list[RenderedPiece], Section | None]:
        """The first pieces of ``section`` that the caches hold, and the section of the others
        (chained onto the last one found), or ``None`` when every piece was found."""
        found: list[RenderedPiece] = []
        in_memory: list[tuple[str, CachedPdf]] = []  # checked on disk at once, after the walk
        end_y: float | None = None
        rest: Section | None = None
        for index, piece in enumerate(section.pieces):
            seam = Seam.after(piece, end_y)
            key = piece_key(piece, section.payload, options, seam, self._fingerprint)  # ~0.1 ms
            entry, cache = self._coordinator.in_memory(key), "memory"
            if entry is None:
                entry, cache = await self._coordinator.lookup(key, False)
            else:
                in_memory.append((key, entry))
            if entry is None:
                rest = Section(section.payload, section.pieces[index:], end_y)
                break
            rendered = _piece(key, entry)
            metrics.PIECES.labels(cache).inc()
            progress.found(rendered.pages)
            found.append(rendered)
            end_y = rendered.end_y
        # one trip to a thread for the lot, not one a piece
        await self._coordinator.keep_stored(in_memory)
        return found, rest

    async def _read(self, key: str) -> RenderedPiece:
        entry, _ = await self._coordinator.lookup(key, False)
        return _piece(key, entry)


def _piece(key: str, entry: CachedPdf | None) -> RenderedPiece:
    """The piece in a cache ``entry`` of ``key``."""
    try:
        if entry is None:
            raise NotAPiece("gone from memory and disk")
        return from_entry(entry)
    except NotAPiece as exc:
        raise PiecesIncomplete(f"piece {key[:12]} cannot be assembled: {exc}") from None


async def _finished(task: asyncio.Task[Stamp] | None) -> Stamp | None:
    """The stamp rendered ahead, if it was and it worked."""
    if task is None:
        return None
    try:
        return await asyncio.shield(task)
    except Exception:  # noqa: BLE001 - logged by _log_failure; the assembly renders one
        return None


def _retrieved(task: asyncio.Task[tuple[CachedPdf, str]]) -> None:
    """Mark a cover's failure as seen: the document reports it, if it gets that far."""
    if not task.cancelled():
        task.exception()


def _log_failure(task: asyncio.Task[Stamp]) -> None:
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.info("the stamp rendered ahead failed (%s); the assembly renders its own", exc)


def _weight(section: Section) -> int:
    """What a section costs to render, roughly: its messages' weight."""
    return sum(message_weight(m.body) for piece in section.pieces for m in piece.messages)


def _sections(plan: PiecePlan) -> list[Section]:
    """Each section of chunks, with the snapshot's frame without its members (the cover,
    the only piece that shows them, is rendered apart: ``_cover``)."""
    bare = plan.payload.model_copy(update={"messages": [], "members": []})
    return [Section(bare, s) for s in plan.sections]


async def _nothing() -> None:
    """The assembly reports no start of its own (the document reported ``started``)."""
