"""A snapshot's pieces: its cover, then the parts of the room's chunks that its scope covers.

A chunk cut by the scope's ``from``/``to`` gives an *edge* piece of its own; a chunk wholly in
scope has the same content in every snapshot that covers it (unscoped or scoped). The first
piece of each section starts on a fresh page under the section's heading; the others chain onto
the piece before them (``keys.Seam``), so a piece is shared where its seam is too: in a scoped
snapshot, not after the first edge within its section, but throughout the sections after.
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
    return PiecePlan(payload, options, cover, _continuations(out, tz))


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
