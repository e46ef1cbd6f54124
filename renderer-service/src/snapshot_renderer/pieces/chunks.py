"""Where the room's timeline is cut: chunks that close at a message count or a weight budget, and
sections that group chunks.

Both are decided greedily from the room's first message, each boundary by the messages before it
and the one at it only, so appending messages never moves a boundary: it only grows the open
tail chunk (and, once that closes, opens the next). The API assigns each message its room-level
chunk when it is appended and a payload's messages carry it (``stored``); a payload frozen before
that is cut here from its first message (``cut``).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass, replace

from snapshot_shared.limits import message_weight
from snapshot_shared.messages import PayloadMessage


@dataclass(frozen=True)
class ChunkPolicy:
    """How big a chunk and a section may grow.

    A chunk closes at ``max_messages`` or before a message that would take its weight
    (``snapshot_shared.limits.message_weight``: bytes, line breaks, emoji, per-message cost)
    over ``max_weight``; a message heavier than that on its own is a chunk by itself. A page holds
    about 5,600 weight, so the default budget is ~9 pages: 16 KiB of newlines or of long words
    cannot make one chunk hundreds of pages. A section is a run of ``section_messages /
    max_messages`` room chunks (at most ``section_messages`` messages), cut again at the first
    chunk that starts in another calendar month.
    """

    max_messages: int = 50
    max_weight: int = 48_000
    section_messages: int = 1_000

    def __post_init__(self) -> None:
        if min(self.max_messages, self.max_weight, self.section_messages) < 1:
            raise ValueError("chunk and section bounds must be positive")

    @property
    def chunks_per_section(self) -> int:
        """Room chunks per section: ``section_messages`` of full chunks."""
        return max(1, self.section_messages // self.max_messages)


@dataclass(frozen=True)
class Chunk:
    """A run of the room's timeline: ordinals ``start`` (inclusive) to ``end`` (exclusive)."""

    index: int
    start: int
    end: int
    first_at: dt.datetime  # when its first message was posted


def cut(messages: Sequence[PayloadMessage], policy: ChunkPolicy) -> list[Chunk]:
    """The chunks of a room whose whole timeline is ``messages`` (ordinal = position)."""
    chunks: list[Chunk] = []
    start = count = weight = 0
    for ordinal, message in enumerate(messages):
        w = message_weight(message.body)
        if count and (count >= policy.max_messages or weight + w > policy.max_weight):
            chunks.append(_chunk(len(chunks), start, ordinal, messages))
            start, count, weight = ordinal, 0, 0
        count += 1
        weight += w
    if count:
        chunks.append(_chunk(len(chunks), start, start + count, messages))
    return chunks


def stored(messages: Sequence[PayloadMessage]) -> list[Chunk] | None:
    """The chunks the API assigned to ``messages`` (each carries its room-level ``chunk``),
    positions counted in ``messages``; ``None`` when a message carries none (a payload frozen
    before chunks were stored) or they are out of order."""
    chunks: list[Chunk] = []
    for position, message in enumerate(messages):
        index = getattr(message, "chunk", None)
        if index is None:
            return None
        if chunks and chunks[-1].index == index:
            continue
        if chunks and index < chunks[-1].index:
            return None
        if chunks:
            chunks[-1] = replace(chunks[-1], end=position)
        chunks.append(Chunk(index, position, len(messages), message.created_at))
    return chunks


def _chunk(index: int, start: int, end: int, messages: Sequence[PayloadMessage]) -> Chunk:
    return Chunk(index=index, start=start, end=end, first_at=messages[start].created_at)


def sections(chunks: Sequence[Chunk], timezone: str, policy: ChunkPolicy) -> list[list[Chunk]]:
    """``chunks`` grouped into sections; months are calendar months in ``timezone``.

    A section holds the chunks of one run of ``policy.chunks_per_section`` room chunks (by
    chunk index, so a scoped snapshot cuts its sections where an unscoped one does) and starts
    again at the first chunk that starts in another month."""
    tz = zoneinfo.ZoneInfo(timezone)
    groups: list[list[Chunk]] = []
    run: int | None = None
    month: tuple[int, int] | None = None
    for chunk in chunks:
        local = chunk.first_at.astimezone(tz)
        this_month = (local.year, local.month)
        this_run = chunk.index // policy.chunks_per_section
        if not groups or this_run != run or this_month != month:
            groups.append([])
            run, month = this_run, this_month
        groups[-1].append(chunk)
    return groups
