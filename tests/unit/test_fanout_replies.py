"""A document run counts each piece of a section once, whatever answers it gets: a section
redelivered after a broker hiccup answers again for the pieces it had answered (issue 11)."""

from __future__ import annotations

import asyncio

from snapshot_renderer.fanout import Fanout
from snapshot_renderer.pieces.wire import SectionReply


def piece(section: int, index: int) -> SectionReply:
    return SectionReply(
        section_id=f"run.{section}", event="piece", index=index, key=f"k{section}{index}", pages=2
    )


def done(section: int, keys: list[str]) -> SectionReply:
    return SectionReply(section_id=f"run.{section}", event="done", keys=keys)


def collect(replies: list[SectionReply], sections: int) -> tuple[list[list[str]], list[str]]:
    fanout = Fanout(
        publisher=None,  # collecting publishes nothing
        pieces_queue="render.pieces",
        reply_queue="render.pieces.reply.test",
        silence_seconds=5,
    )
    counted: list[str] = []

    async def on_piece(reply: SectionReply) -> None:
        counted.append(reply.key or "")

    async def run() -> list[list[str]]:
        queue: asyncio.Queue[SectionReply] = asyncio.Queue()
        for reply in replies:
            queue.put_nowait(reply)
        keys: list[list[str]] = await fanout._collect(queue, sections, on_piece)
        return keys

    return asyncio.run(run()), counted


def test_a_redelivered_section_answering_again_is_counted_once() -> None:
    replies = [
        piece(0, 0),
        piece(1, 0),
        piece(0, 1),
        piece(0, 0),  # section 0 came back to the queue and starts over
        piece(0, 1),
        piece(1, 1),
        done(1, ["k10", "k11"]),
        piece(0, 2),
        done(0, ["k00", "k01", "k02"]),
        piece(1, 0),  # a late answer of a section that is done
    ]
    keys, counted = collect(replies, 2)
    assert keys == [["k00", "k01", "k02"], ["k10", "k11"]]
    assert counted == ["k00", "k10", "k01", "k11", "k02"]  # each piece once, as it came
