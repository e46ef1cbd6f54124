"""The room-level chunk rule (``snapshot_shared.chunking``): greedy from the first message,
and appending in any batches gives the boundaries of cutting the whole timeline at once."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from snapshot_shared.chunking import DEFAULT_POLICY, ChunkPolicy, OpenChunk, append, cut
from snapshot_shared.limits import MESSAGE_BYTES, message_weight

SMALL = ChunkPolicy(max_messages=4, max_weight=1_000)


def test_a_chunk_closes_at_its_message_count():
    weights = [message_weight("hi")] * 120
    chunks = cut(weights)
    assert chunks == [0] * 50 + [1] * 50 + [2] * 20
    assert append(OpenChunk(), weights)[1] == OpenChunk(2, 20, 20 * message_weight("hi"))


def test_a_chunk_closes_before_a_message_that_would_take_it_over_its_weight():
    # 400 + 600 = 1,000 fits exactly; one more unit of weight does not.
    assert cut([400, 600, 1], SMALL) == [0, 0, 1]
    assert cut([400, 601], SMALL) == [0, 1]


def test_a_heavy_message_is_a_chunk_by_itself():
    heavy = message_weight("\n" * 500 + "x" * (MESSAGE_BYTES - 500))
    assert heavy > DEFAULT_POLICY.max_weight
    light = message_weight("hello")
    chunks, state = append(OpenChunk(), [light, light, heavy, light, heavy, heavy])
    assert chunks == [0, 0, 1, 2, 3, 4]
    assert state == OpenChunk(4, 1, heavy)
    # An empty room's first message never closes anything, however heavy.
    assert cut([heavy, light]) == [0, 1]


def test_a_full_chunk_stays_open_until_the_next_message():
    chunks, state = append(OpenChunk(), [100] * 4, SMALL)
    assert chunks == [0] * 4 and state == OpenChunk(0, 4, 400)
    assert append(state, [100], SMALL) == ([1], OpenChunk(1, 1, 100))
    assert append(state, [], SMALL) == ([], state)


weights = st.lists(
    st.one_of(
        st.integers(400, 2_000),  # short messages
        st.integers(40_000, 70_000),  # heavy ones: near or over a chunk's budget alone
        st.sampled_from([48_000, 47_600, 24_000]),  # exactly at the budget's edges
    ),
    max_size=300,
)


@given(weights, st.lists(st.integers(0, 60), max_size=40))
def test_appending_in_batches_gives_the_boundaries_of_the_whole_cut(weights, batch_sizes):
    whole, end = append(OpenChunk(), weights)
    chunks: list[int] = []
    state = OpenChunk()
    rest = list(weights)
    for size in [*batch_sizes, len(rest)]:
        batch, rest = rest[:size], rest[size:]
        new, state = append(state, batch)
        chunks += new
    assert chunks == whole and state == end


@given(weights)
def test_chunks_are_dense_runs_within_their_bounds(weights):
    chunks = cut(weights)
    assert chunks == sorted(chunks)
    assert all(b - a in (0, 1) for a, b in zip(chunks, chunks[1:], strict=False))
    for index in set(chunks):
        held = [w for w, c in zip(weights, chunks, strict=True) if c == index]
        assert len(held) <= DEFAULT_POLICY.max_messages
        assert len(held) == 1 or sum(held) <= DEFAULT_POLICY.max_weight


@pytest.mark.parametrize(
    "bounds",
    [
        {"max_messages": 0},
        {"max_weight": -1},
        {"section_messages": 0},
        {"max_messages": 1.5},
        {"max_weight": True},
    ],
)
def test_a_policy_needs_positive_integer_bounds(bounds):
    with pytest.raises(ValueError, match="positive integer"):
        ChunkPolicy(**bounds)


@pytest.mark.parametrize(
    ("state", "why"),
    [
        ({"index": -1}, "non-negative"),
        ({"messages": 2, "weight": 0}, "empty chunk"),
        ({"messages": 0, "weight": 5}, "empty chunk"),
        ({"index": 3}, "first chunk"),
    ],
)
def test_an_open_chunk_is_consistent(state, why):
    with pytest.raises(ValueError, match=why):
        OpenChunk(**state)


@pytest.mark.parametrize("weight", [0, -400, 1.5, "400", None])
def test_weights_are_positive_integers(weight):
    with pytest.raises(ValueError, match="positive integer"):
        append(OpenChunk(), [400, weight])
