"""A snapshot's pieces: its cover, then the parts of the room's chunks that its scope covers.

A chunk cut by the scope's ``from``/``to`` gives an *edge* piece of its own; a chunk wholly in
scope has the same content in every snapshot that covers it (unscoped or scoped). The first
piece of each section starts on a fresh page under the section's heading; the others chain onto
the piece before them (``keys.Seam``), so a piece is shared where its seam is too: in a scoped
snapshot, not after the first edge within its section, but throughout the sections after.

The room's last chunk is the one that grows: appending re-renders it. Until it is full (its
``max_messages``), it is cut into *steps* of ``TAIL_STEP`` messages by ordinal, so a step's
content does not depend on when it was cut, and a re-snapshot renders only the steps that
changed: ten new messages are one new step, not the whole open chunk again (up to 49
messages: ~130 ms of WeasyPrint on the bench machine, against ~40 for ten). A full chunk, or
one the next chunk follows, is one piece like every other chunk: the snapshot that fills a
chunk (or closes it by weight) renders it whole, once. A scoped snapshot cannot tell the
room's last chunk from its own: it steps its own last chunk too, and shares those steps with
the unscoped snapshot when that chunk is the room's open one.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from snapshot_shared.chunking import ChunkPolicy
from snapshot_shared.messages import PayloadMessage, RenderOptions, SnapshotPayload

from snapshot_renderer.pieces.chunks import Chunk, cut, sections, stored
from snapshot_renderer.render.view import format_day

PieceKind = Literal["cover", "chunk"]
TAIL_STEP = 10  # messages a step of the room's last chunk holds


@dataclass(frozen=True)
class Piece:
    """One separately rendered and cached part of a snapshot."""

    kind: PieceKind
    section: int  # index of its section in the snapshot; -1 for the cover
    chunk: int | None  # the room chunk it comes from
    messages: tuple[PayloadMessage, ...] = ()
    opens_section: bool = False  # starts on a fresh page with ``heading``
    heading: str | None = None  # the section's heading (on its first piece only)
    continues_day: bool = False  # its first message's day began in the piece before
    edge: bool = False  # a chunk cut by the scope
    message_count: int = 0  # the cover: how many messages the snapshot holds


@dataclass(frozen=True)
class PiecePlan:
    """The cover and the sections (lists of chunk pieces, in timeline order)."""

    payload: SnapshotPayload
    options: RenderOptions
    cover: Piece
    sections: list[list[Piece]] = field(default_factory=list)

    @property
    def pieces(self) -> list[Piece]:
        """Every piece in document order, the cover first."""
        return [self.cover, *(p for section in self.sections for p in section)]


def split(
    payload: SnapshotPayload,
    options: RenderOptions,
    policy: ChunkPolicy | None = None,
    *,
    first_ordinal: int = 0,
    room_chunks: Sequence[Chunk] | None = None,
) -> PiecePlan:
    """Cut ``payload`` into pieces.

    ``room_chunks`` are the chunks of the room's whole timeline and ``first_ordinal`` the
    ordinal of the payload's first message in it (a scoped snapshot); without them the payload
    is the room's timeline from its first message (an unscoped snapshot).
    """
    policy = policy or ChunkPolicy()
    cover = Piece(kind="cover", section=-1, chunk=None, message_count=len(payload.messages))
    if "messages" not in payload.sections or not payload.messages:
        return PiecePlan(payload, options, cover)
    if room_chunks is None:
        if first_ordinal:
            raise ValueError("a payload that starts mid-room needs the room's chunks")
        room_chunks = stored(payload.messages) or cut(payload.messages, policy)
    scope = (first_ordinal, first_ordinal + len(payload.messages))
    if room_chunks[0].start > scope[0] or room_chunks[-1].end < scope[1]:
        raise ValueError("the room's chunks do not cover the payload's messages")
    tz = zoneinfo.ZoneInfo(options.timezone)
    out: list[list[Piece]] = []
    for group in sections(room_chunks, options.timezone, policy):
        pieces = [
            _piece(payload.messages, chunk, scope, len(out), tz, opens=not i)
            for i, chunk in enumerate(c for c in group if c.end > scope[0] and c.start < scope[1])
        ]
        if pieces:
            out.append(pieces)
    last = out[-1][-1] if out else None
    if (
        last is not None
        and last.chunk == room_chunks[-1].index
        and not last.edge
        and len(last.messages) < policy.max_messages  # else it is full: it grows no more
    ):
        out[-1][-1:] = _steps(last, max(room_chunks[-1].start, scope[0]))
    return PiecePlan(payload, options, cover, _continuations(out, tz))


def _steps(piece: Piece, position: int) -> list[Piece]:
    """The room's last chunk as steps: its messages grouped by ordinal // ``TAIL_STEP`` (the
    payload ``position`` of its first message standing in for a missing ordinal), so a
    scoped snapshot that reaches the chunk cuts it where an unscoped one does. The first step
    keeps the section's heading if the chunk opens one."""
    groups: dict[int, list[PayloadMessage]] = {}
    for offset, message in enumerate(piece.messages):
        ordinal = message.ordinal if message.ordinal is not None else position + offset
        groups.setdefault(ordinal // TAIL_STEP, []).append(message)
    first, *rest = (tuple(group) for group in groups.values())
    return [
        replace(piece, messages=first),
        *(replace(piece, messages=m, opens_section=False, heading=None) for m in rest),
    ]


def _piece(
    messages: Sequence[PayloadMessage],
    chunk: Chunk,
    scope: tuple[int, int],
    section: int,
    tz: zoneinfo.ZoneInfo,
    opens: bool,
) -> Piece:
    start, end = max(chunk.start, scope[0]), min(chunk.end, scope[1])
    own = tuple(messages[start - scope[0] : end - scope[0]])
    heading = None
    if opens:
        heading = f"Messages from {format_day(own[0].created_at.astimezone(tz).date())}"
    return Piece(
        kind="chunk",
        section=section,
        chunk=chunk.index,
        messages=own,
        opens_section=opens,
        heading=heading,
        edge=(start, end) != (chunk.start, chunk.end),
    )


def _continuations(groups: list[list[Piece]], tz: zoneinfo.ZoneInfo) -> list[list[Piece]]:
    """Mark the chained pieces whose first message's day began in the piece before: they go on
    under that day's heading instead of repeating it (a section's first piece always shows it)."""
    out = []
    for group in groups:
        marked = [group[0]]
        for before, piece in zip(group, group[1:], strict=False):
            last = before.messages[-1].created_at.astimezone(tz).date()
            first = piece.messages[0].created_at.astimezone(tz).date()
            marked.append(replace(piece, continues_day=first == last))
        out.append(marked)
    return out
