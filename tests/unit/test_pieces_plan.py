"""Chunks and piece keys (issue 11): boundaries that appending never moves, a weight budget that
closes heavy chunks early, and the pieces a scoped snapshot shares with the unscoped one."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from typing import Any

import pytest
from snapshot_renderer.pieces.chain import render_chain
from snapshot_renderer.pieces.chunks import cut
from snapshot_renderer.pieces.keys import Seam, content_digest, piece_key
from snapshot_renderer.pieces.plan import Piece, PiecePlan, split
from snapshot_renderer.render.pieces import RenderedPiece
from snapshot_shared.chunking import ChunkPolicy
from snapshot_shared.hashing import canonical_json
from snapshot_shared.messages import RenderOptions, SnapshotPayload

START = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)
POLICY = ChunkPolicy(max_messages=10, max_weight=20_000, section_messages=40)
FP = "f" * 64


def message(i: int, body: str | None = None, minutes: int = 37) -> dict[str, Any]:
    return {
        "id": str(uuid.UUID(int=i + 1)),
        "author_id": "olivia",
        "author_name": "Olivia",
        "created_at": (START + dt.timedelta(minutes=minutes * i)).isoformat(),
        "body": body if body is not None else f"message {i}",
    }


def payload(messages: list[dict[str, Any]]) -> SnapshotPayload:
    return SnapshotPayload.model_validate(
        {
            "room": {"id": str(uuid.UUID(int=0)), "name": "Room", "created_at": START},
            "sections": ["members", "messages"],
            "messages": messages,
            "as_of": messages[-1]["created_at"] if messages else None,
        }
    )


def keys(plan: PiecePlan, end_y: float = 300.0) -> dict[tuple[int | None, int, int], str]:
    """Chunk piece keys by (chunk, first message, count), each chained piece assumed to start at
    ``end_y`` (what rendering would tell: the same content ends at the same place)."""
    out = {}
    for section in plan.sections:
        for piece in section:
            seam = Seam.after(piece, end_y)
            first = int(uuid.UUID(str(piece.messages[0].id))) - 1
            out[(piece.chunk, first, len(piece.messages))] = piece_key(
                piece, plan.payload, plan.options, seam, FP
            )
    return out


def test_appending_changes_only_the_tail_chunk_key() -> None:
    room = [message(i) for i in range(95)]
    before = keys(split(payload(room), RenderOptions(), POLICY))
    after = keys(
        split(payload(room + [message(i) for i in range(95, 98)]), RenderOptions(), POLICY)
    )
    assert len(before) == 10  # 9 closed chunks of 10 and an open tail of 5
    changed = {k for k in before if before[k] != after.get(k)}
    assert changed == {(9, 90, 5)}
    assert set(after) - set(before) == {(9, 90, 8)}


def test_appending_never_moves_a_boundary() -> None:
    bodies = ["x" * (i * 997 % 9000) + "\n" * (i % 13) for i in range(120)]
    room = [message(i, body) for i, body in enumerate(bodies)]
    full = [(c.start, c.end) for c in cut(payload(room).messages, POLICY)]
    for n in range(1, 120):
        prefix = [(c.start, c.end) for c in cut(payload(room[:n]).messages, POLICY)]
        assert prefix[:-1] == full[: len(prefix) - 1]
        assert prefix[-1][0] == full[len(prefix) - 1][0]


def test_a_weight_heavy_chunk_closes_early() -> None:
    heavy = "line\n" * 400  # 2,000 bytes and 400 line breaks: ~42,000 weight
    room = [message(i) for i in range(3)] + [message(3, heavy)] + [message(i) for i in range(4, 30)]
    chunks = cut(payload(room).messages, POLICY)
    assert [(c.start, c.end) for c in chunks][:3] == [(0, 3), (3, 4), (4, 14)]
    light = cut(payload([message(i) for i in range(30)]).messages, POLICY)
    assert [(c.start, c.end) for c in light] == [(0, 10), (10, 20), (20, 30)]


def fake_render(
    payload: SnapshotPayload, options: RenderOptions, piece: Piece, seam: Seam
) -> RenderedPiece:
    """A stand-in layout: where a piece ends depends on its content and where it starts, as
    in WeasyPrint, deterministically."""
    digest = hashlib.sha256(
        canonical_json([content_digest(piece, payload, options), seam.as_json()])
    )
    end_y = 100.0 + int.from_bytes(digest.digest()[:4], "big") % 800
    return RenderedPiece(b"", 1, seam.start_y is not None, end_y, 1122.5, ())


def chain_keys(plan: PiecePlan) -> dict[tuple[int | None, int, int], str]:
    """Piece keys by (chunk, first message, count), the seams found by rendering in order."""
    return {
        (c.piece.chunk, int(c.piece.messages[0].id) - 1, len(c.piece.messages)): c.key
        for c in render_chain(plan, FP, render=fake_render)
        if c.piece.kind == "chunk"
    }


def test_scoped_and_unscoped_snapshots_share_the_sections_after_the_first_edge() -> None:
    room = [message(i) for i in range(120)]
    options = RenderOptions(timezone="Europe/Berlin")
    unscoped = chain_keys(split(payload(room), options, POLICY))
    room_chunks = cut(payload(room).messages, POLICY)
    plan = split(payload(room[25:97]), options, POLICY, first_ordinal=25, room_chunks=room_chunks)
    scoped = chain_keys(plan)
    # Sections of 40 messages: chunks 0-3, 4-7, 8-11. The scope cuts chunk 2 (from 25) and
    # chunk 9 (to 97): edge pieces of its own. Chunk 3 chains after the edge, so it starts
    # elsewhere than after the whole chunk 2: its own key too. Section 1 starts on a fresh page
    # in both, so its chunks are shared, and so is chunk 8, which opens section 2.
    assert [p.edge for s in plan.sections for p in s] == [True, *[False] * 6, True]
    shared = {k[0] for k in scoped if scoped[k] == unscoped.get(k)}
    assert shared == {4, 5, 6, 7, 8}
    assert {k for k in scoped if k not in unscoped} == {(2, 25, 5), (9, 90, 7)}


def test_a_section_opens_on_a_fresh_page_with_a_heading() -> None:
    room = [message(i, minutes=60 * 24 * 2) for i in range(40)]  # one every two days
    plan = split(payload(room), RenderOptions(), POLICY)
    openers = [s[0] for s in plan.sections]
    # chunks start 2 March, 22 March, 11 April, 1 May: sections by calendar month
    assert [[p.chunk for p in s] for s in plan.sections] == [[0, 1], [2], [3]]
    assert all(p.opens_section and p.heading for p in openers)
    assert Seam.after(openers[1], 512.0) == Seam(None, False)
    assert openers[1].heading == "Messages from Saturday, 11 April 2026"
    assert not any(p.opens_section for s in plan.sections for p in s[1:])


def test_the_key_names_layout_seam_and_fingerprint() -> None:
    plan = split(payload([message(i) for i in range(15)]), RenderOptions(), POLICY)
    piece = plan.sections[0][1]
    base = piece_key(piece, plan.payload, plan.options, Seam(300.0), FP)
    variants = [
        piece_key(piece, plan.payload, RenderOptions(page_size="Letter"), Seam(300.0), FP),
        piece_key(piece, plan.payload, RenderOptions(timezone="Asia/Tokyo"), Seam(300.0), FP),
        piece_key(piece, plan.payload, RenderOptions(locale="de"), Seam(300.0), FP),
        piece_key(piece, plan.payload, plan.options, Seam(300.5), FP),
        piece_key(piece, plan.payload, plan.options, Seam(300.0, continues_day=True), FP),
        piece_key(piece, plan.payload, plan.options, Seam(300.0), "e" * 64),
    ]
    assert len({base, *variants}) == 7
    # The title shows on the cover only: a retitled snapshot keeps every chunk's key.
    titled = RenderOptions(title="Other")
    assert piece_key(piece, plan.payload, titled, Seam(300.0), FP) == base
    cover = piece_key(plan.cover, plan.payload, titled, Seam(), FP)
    assert cover != piece_key(plan.cover, plan.payload, plan.options, Seam(), FP)


def test_a_day_that_goes_on_across_a_seam_is_marked_continued() -> None:
    plan = split(payload([message(i, minutes=49) for i in range(30)]), RenderOptions(), POLICY)
    chained = plan.sections[0][1:]
    # the second chunk starts at 16:10 on the first day; the third at 00:20 on the next day
    assert [p.continues_day for p in chained] == [True, False]


def test_a_payload_without_messages_is_the_cover_alone() -> None:
    plan = split(payload([]), RenderOptions(), POLICY)
    assert plan.pieces == [Piece(kind="cover", section=-1, chunk=None)]
    with pytest.raises(ValueError):
        split(payload([message(1)]), RenderOptions(), POLICY, first_ordinal=1)


def test_the_rooms_last_chunk_is_cut_in_steps_that_appending_leaves_alone() -> None:
    """The open chunk grows with every append; until it is full it is cut into steps of
    ``TAIL_STEP`` messages from its start, so appending re-renders only the steps it changed;
    full (it grows no more) or followed by the next chunk, it is one piece like the others."""
    policy = ChunkPolicy()  # 50 messages a chunk, 1,000 a section
    every = [message(i, minutes=3) for i in range(1_051)]

    def plan_of(count: int) -> PiecePlan:
        return split(payload(every[:count]), RenderOptions(), policy)

    def tail(plan: PiecePlan) -> list[tuple[int | None, int]]:
        return [(p.chunk, len(p.messages)) for p in plan.sections[-1]]

    assert tail(plan_of(1_010)) == [(20, 10)]
    assert tail(plan_of(1_035)) == [(20, 10), (20, 10), (20, 10), (20, 5)]
    before, after = keys(plan_of(1_035)), keys(plan_of(1_045))
    assert set(after) - set(before) == {(20, 1_030, 10), (20, 1_040, 5)}
    assert all(after[k] == key for k, key in before.items() if k in after)
    assert tail(plan_of(1_049)) == [(20, 10)] * 4 + [(20, 9)]
    assert tail(plan_of(1_050)) == [(20, 50)]
    assert tail(plan_of(1_000))[-1] == (19, 50)
    assert [len(s) for s in plan_of(1_051).sections] == [20, 2]
    assert tail(plan_of(1_051)) == [(20, 50), (21, 1)]
    # a section's first step opens it (heading, fresh page); the others chain on
    steps = plan_of(1_030).sections[-1]
    assert [p.opens_section for p in steps] == [True, False, False]
    assert steps[0].heading and steps[1].heading is None


def test_a_scoped_snapshot_ending_before_the_last_chunk_is_not_stepped() -> None:
    policy = ChunkPolicy()
    every = [message(i, minutes=3) for i in range(1_030)]
    chunks = cut(payload(every).messages, policy)
    scoped = split(payload(every[:1_020]), RenderOptions(), policy, room_chunks=chunks)
    assert [(p.chunk, len(p.messages), p.edge) for p in scoped.sections[-1]] == [(20, 20, True)]
