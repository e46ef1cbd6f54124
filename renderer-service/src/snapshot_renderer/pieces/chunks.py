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

from snapshot_shared import chunking
from snapshot_shared.chunking import ChunkPolicy
from snapshot_shared.limits import message_weight
from snapshot_shared.messages import PayloadMessage


def chunks_per_section(policy: ChunkPolicy) -> int:
    """Room chunks per section: ``section_messages`` of full chunks (20 by default)."""
    return max(1, policy.section_messages // policy.max_messages)


@dataclass(frozen=True)
class Chunk:
    """A run of the room's timeline: ordinals ``start`` (inclusive) to ``end`` (exclusive)."""

    index: int
    start: int
    end: int
    first_at: dt.datetime  # when its first message was posted


def cut(messages: Sequence[PayloadMessage], policy: ChunkPolicy) -> list[Chunk]:
    """The chunks of a room whose whole timeline is ``messages`` (ordinal = position), by the
    rule the API applies when messages are appended (``snapshot_shared.chunking``)."""
    return _runs(chunking.cut((message_weight(m.body) for m in messages), policy), messages)


def stored(messages: Sequence[PayloadMessage]) -> list[Chunk] | None:
    """The chunks the API assigned to ``messages`` (each carries its room-level ``chunk``),
    positions counted in ``messages``; ``None`` when a message carries none (a payload frozen
    before chunks were stored) or they go back."""
    indices: list[int] = []
    for message in messages:
        if message.chunk is None or (indices and message.chunk < indices[-1]):
            return None
        indices.append(message.chunk)
    return _runs(indices, messages)


def _runs(indices: Sequence[int], messages: Sequence[PayloadMessage]) -> list[Chunk]:
    """One chunk per run of equal ``indices`` (the chunk of each message, in order)."""
    chunks: list[Chunk] = []
    for position, index in enumerate(indices):
        if chunks and chunks[-1].index == index:
            continue
        if chunks:
            chunks[-1] = replace(chunks[-1], end=position)
        chunks.append(Chunk(index, position, len(messages), messages[position].created_at))
    return chunks


def sections(chunks: Sequence[Chunk], timezone: str, policy: ChunkPolicy) -> list[list[Chunk]]:
    """``chunks`` grouped into sections; months are calendar months in ``timezone``.

    A section holds the chunks of one run of ``chunks_per_section(policy)`` room chunks (by
    chunk index, so a scoped snapshot cuts its sections where an unscoped one does) and starts
    again at the first chunk that starts in another month."""
    tz = zoneinfo.ZoneInfo(timezone)
    groups: list[list[Chunk]] = []
    run: int | None = None
    month: tuple[int, int] | None = None
    for chunk in chunks:
        local = chunk.first_at.astimezone(tz)
        this_month = (local.year, local.month)
        this_run = chunk.index // chunks_per_section(policy)
        if not groups or this_run != run or this_month != month:
            groups.append([])
            run, month = this_run, this_month
        groups[-1].append(chunk)
    return groups
