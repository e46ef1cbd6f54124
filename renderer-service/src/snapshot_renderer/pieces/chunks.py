"""Where the room's timeline is cut: chunks that close at a message count or a weight budget, and
sections that group chunks.

Both are decided greedily from the room's first message, each boundary by the messages before it
and the one at it only, so appending messages never moves a boundary: it only grows the open
tail chunk (and, once that closes, opens the next). The ordinal of a message is its position in
the room's timeline (for now, its position in an unscoped payload; the API's per-room ordinal is
a later step).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass

from snapshot_shared.limits import message_weight
from snapshot_shared.messages import PayloadMessage


@dataclass(frozen=True)
class ChunkPolicy:
    """How big a chunk and a section may grow.

    A chunk closes at ``max_messages`` or before a message that would take its weight
    (``snapshot_shared.limits.message_weight``: bytes, line breaks, emoji, per-message cost)
    over ``max_weight``; a message heavier than that on its own is a chunk by itself. A page holds
    about 5,600 weight, so the default budget is ~9 pages: 16 KiB of newlines or of long words
    cannot make one chunk hundreds of pages. A section closes once it holds
    ``section_messages`` or at the first chunk that starts in another calendar month.
    """

    max_messages: int = 50
    max_weight: int = 48_000
    section_messages: int = 1_000

    def __post_init__(self) -> None:
        if min(self.max_messages, self.max_weight, self.section_messages) < 1:
            raise ValueError("chunk and section bounds must be positive")


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


def _chunk(index: int, start: int, end: int, messages: Sequence[PayloadMessage]) -> Chunk:
    return Chunk(index=index, start=start, end=end, first_at=messages[start].created_at)


def sections(chunks: Sequence[Chunk], timezone: str, policy: ChunkPolicy) -> list[list[Chunk]]:
    """``chunks`` grouped into sections; months are calendar months in ``timezone``."""
    tz = zoneinfo.ZoneInfo(timezone)
    groups: list[list[Chunk]] = []
    held = 0
    month: tuple[int, int] | None = None
    for chunk in chunks:
        local = chunk.first_at.astimezone(tz)
        this_month = (local.year, local.month)
        if not groups or held >= policy.section_messages or this_month != month:
            groups.append([])
            held, month = 0, this_month
        groups[-1].append(chunk)
        held += chunk.end - chunk.start
    return groups
