"""Where a room's timeline is cut into chunks: a property of the room, assigned as messages are
appended (the API stores each message's ``ordinal`` and ``chunk``) and read by the renderer.

The rule is greedy from the room's first message: a chunk closes at ``max_messages`` messages,
or before a message whose weight (``snapshot_shared.limits.message_weight``) would take the
chunk's weight over ``max_weight``; a message heavier than that on its own is a chunk by
itself. Each boundary depends only on the messages before it and the one at it, so appending
never moves a boundary: it grows the open (last) chunk or opens the next one, and appending
messages one by one gives the same chunks as cutting the whole timeline at once.

Migration ``0009_message_chunks.sql`` applies the same rule in SQL to the rooms that existed
before it (with the default policy's bounds written out).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class ChunkPolicy:
    """How big a chunk and a section may grow.

    A page holds about 5,600 weight, so the default chunk budget is ~9 pages: 16 KiB of
    newlines or of long words cannot make one chunk hundreds of pages. ``section_messages``
    is read by the renderer, which groups chunks into sections that start on a fresh page.
    """

    max_messages: int = 50
    max_weight: int = 48_000
    section_messages: int = 1_000

    def __post_init__(self) -> None:
        for name in ("max_messages", "max_weight", "section_messages"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"ChunkPolicy.{name} must be a positive integer, not {value!r}")


DEFAULT_POLICY = ChunkPolicy()


@dataclass(frozen=True)
class OpenChunk:
    """A room's open chunk: its ``index`` and the ``messages`` and ``weight`` it holds.

    A room without messages is ``OpenChunk()`` (chunk 0, empty). A chunk that reached
    ``max_messages`` stays the open one until the next message opens its successor.
    """

    index: int = 0
    messages: int = 0
    weight: int = 0

    def __post_init__(self) -> None:
        for name in ("index", "messages", "weight"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"OpenChunk.{name} must be a non-negative integer, not {value!r}")
        if (self.messages == 0) != (self.weight == 0):
            raise ValueError("an empty chunk weighs 0, and a chunk of messages weighs more")
        if self.index > 0 and self.messages == 0:
            raise ValueError("only a room's first chunk can be empty")


def append(
    state: OpenChunk, weights: Iterable[int], policy: ChunkPolicy = DEFAULT_POLICY
) -> tuple[list[int], OpenChunk]:
    """The chunk index of each new message (``weights``: theirs, in timeline order) appended
    to a room whose open chunk is ``state``, and the room's open chunk afterwards."""
    index, count, total = state.index, state.messages, state.weight
    chunks: list[int] = []
    for weight in weights:
        if isinstance(weight, bool) or not isinstance(weight, int) or weight < 1:
            raise ValueError(f"a message weighs a positive integer, not {weight!r}")
        if count and (count >= policy.max_messages or total + weight > policy.max_weight):
            index, count, total = index + 1, 0, 0
        count += 1
        total += weight
        chunks.append(index)
    return chunks, OpenChunk(index, count, total)


def cut(weights: Iterable[int], policy: ChunkPolicy = DEFAULT_POLICY) -> list[int]:
    """The chunk index of each message of a whole timeline (``weights`` in order)."""
    return append(OpenChunk(), weights, policy)[0]
