"""The chunked content hash (version 2): the API's path (fragments of sealed chunks folded
into a chain, the payload spliced from a frame) and the renderer's path (the full payload)
agree, and the hash follows the content."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from snapshot_shared.hashing import (
    CHAIN_SEED,
    canonical_json,
    chunk_groups,
    chunked_content_hash,
    content_hash,
    fold,
    fragment,
    fragment_digest,
    payload_content_hash,
    payload_frame,
)

OPTIONS = {"page_size": "A4", "timezone": "UTC", "title": None, "locale": "en"}
# Bodies with what JSON escapes (quotes, backslashes, controls) and what it keeps (non-ASCII).
bodies = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30)


def _payload(chunk_sizes: list[int], texts: list[str]) -> dict:
    messages, ordinal = [], 0
    for chunk, size in enumerate(chunk_sizes):
        for _ in range(size):
            messages.append(
                {
                    "id": f"00000000-0000-0000-0000-{ordinal:012d}",
                    "author_id": "olivia",
                    "author_name": "Olivia",
                    "created_at": f"2024-05-01T10:00:{ordinal % 60:02d}.000000Z",
                    "body": texts[ordinal % len(texts)],
                    "kind": "message",
                    "ordinal": ordinal,
                    "chunk": chunk,
                }
            )
            ordinal += 1
    return {
        "room": {"id": "r", "name": 'Room "one"', "created_at": "2024-05-01T09:00:00.000000Z"},
        "sections": ["members", "messages"],
        "members": [{"user_id": "olivia", "display_name": "Ö", "role": "owner"}],
        "messages": messages,
        "as_of": messages[-1]["created_at"] if messages else None,
    }


def _api_side(payload: dict) -> tuple[str, bytes]:
    """What the API does: fragments per chunk, a chain, a frame around the fragments."""
    head = {k: v for k, v in payload.items() if k != "messages"}
    groups = chunk_groups(payload["messages"])
    fragments = [fragment(g) for g in groups]
    sealed = fold(fragment_digest(f) for f in fragments[:-1])  # stored with the last seal
    root = fold([fragment_digest(f) for f in fragments[-1:]], sealed)
    digest = chunked_content_hash(head, root, len(groups), OPTIONS, "snapshot")
    before, after = payload_frame(head)
    return digest, before + b",".join(fragments) + after


@given(st.lists(st.integers(1, 4), max_size=5), st.lists(bodies, min_size=1, max_size=6))
def test_api_and_renderer_agree_on_the_hash_and_the_bytes(sizes, texts):
    payload = _payload(sizes, texts)
    digest, spliced = _api_side(payload)
    assert spliced == canonical_json(payload)
    received = json.loads(spliced)  # what the renderer parses
    assert payload_content_hash(received, OPTIONS, "snapshot", 2) == digest


def test_version_1_is_the_whole_payload_hash():
    payload = _payload([2, 1], ["a"])
    assert payload_content_hash(payload, OPTIONS, "snapshot", 1) == content_hash(
        payload, OPTIONS, "snapshot"
    )
    assert payload_content_hash(payload, OPTIONS, "snapshot", 2) != content_hash(
        payload, OPTIONS, "snapshot"
    )


def test_any_change_of_content_grouping_or_options_changes_the_hash():
    base = _payload([2, 2], ["a", "b"])
    digest = payload_content_hash(base, OPTIONS, "snapshot", 2)
    body = json.loads(json.dumps(base))
    body["messages"][3]["body"] = "changed"
    regrouped = json.loads(json.dumps(base))
    regrouped["messages"][2]["chunk"] = 0  # the same messages, cut elsewhere
    titled = {**OPTIONS, "title": "Other"}
    assert (
        len(
            {
                digest,
                payload_content_hash(body, OPTIONS, "snapshot", 2),
                payload_content_hash(regrouped, OPTIONS, "snapshot", 2),
                payload_content_hash(base, titled, "snapshot", 2),
            }
        )
        == 4
    )


def test_an_empty_timeline_hashes_the_seed():
    payload = _payload([], ["a"])
    head = {k: v for k, v in payload.items() if k != "messages"}
    assert payload_content_hash(payload, OPTIONS, "snapshot", 2) == chunked_content_hash(
        head, CHAIN_SEED, 0, OPTIONS, "snapshot"
    )


def test_messages_without_chunks_and_unknown_versions_are_refused():
    payload = _payload([1], ["a"])
    del payload["messages"][0]["chunk"]
    with pytest.raises(ValueError, match="carry their chunk"):
        payload_content_hash(payload, OPTIONS, "snapshot", 2)
    with pytest.raises(ValueError, match="unknown hash version"):
        payload_content_hash(payload, OPTIONS, "snapshot", 3)


@pytest.mark.parametrize("threshold", [None, 10, 10**9])
def test_a_job_spliced_from_stored_gzip_members_decodes_to_the_payload(threshold):
    import datetime as dt
    import gzip
    import uuid

    from snapshot_shared.messages import RenderJob, decode_job, splice_job

    payload = _payload([3, 2], ['"x"', "é\n"])
    head = {k: v for k, v in payload.items() if k != "messages"}
    before, after = payload_frame(head)
    fragments = [fragment(g) for g in chunk_groups(payload["messages"])]
    middle = [gzip.compress(fragments[0]), gzip.compress(b","), gzip.compress(fragments[1])]
    job = RenderJob(
        task_id=uuid.uuid4(),
        snapshot_id=uuid.uuid4(),
        content_hash="0" * 64,
        options=OPTIONS,
        payload={},
        requested_at=dt.datetime.now(dt.UTC),
        hash_version=2,
    )
    size = len(before) + len(after) + sum(map(len, fragments)) + 1
    body, encoding = splice_job(
        job.model_dump_json().encode(), before, middle, after, threshold, size
    )
    assert encoding == (None if threshold == 10**9 else "gzip")
    decoded = decode_job(body, encoding)
    assert decoded.payload == payload and decoded.hash_version == 2
