"""Wire models: round trips, gzip for large bodies, refusal of bad or hostile bodies."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import uuid

import pytest
from snapshot_shared.hashing import canonical_json, content_hash
from snapshot_shared.messages import (
    Artifact,
    EventError,
    MessageDecodeError,
    RenderJob,
    RenderOptions,
    SnapshotPayload,
    StatusEvent,
    decode_event,
    decode_job,
    encode,
    encode_job,
    inflate,
)

NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)


def _job(body_size: int = 10) -> RenderJob:
    payload = {
        "room": {"id": str(uuid.uuid4()), "name": "R", "created_at": "x"},
        "messages": [{"body": "a" * body_size}],
    }
    options = RenderOptions().model_dump(mode="json")
    return RenderJob(
        task_id=uuid.uuid4(),
        snapshot_id=uuid.uuid4(),
        content_hash=content_hash(payload, options, "snapshot"),
        options=options,
        payload=payload,
        requested_at=NOW,
        request_id="req-1",
    )


def test_job_round_trip_plain():
    job = _job()
    body, encoding = encode(job, gzip_threshold=64 * 1024)
    assert encoding is None
    assert decode_job(body, encoding) == job


def test_large_job_is_gzipped_and_round_trips():
    job = _job(body_size=200_000)
    body, encoding = encode(job, gzip_threshold=64 * 1024)
    assert encoding == "gzip"
    assert len(body) < 20_000
    assert decode_job(body, encoding) == job


@pytest.mark.parametrize("threshold", [None, 64 * 1024, 0], ids=["plain", "under", "gzip"])
def test_a_spliced_job_decodes_to_the_same_job(threshold):
    """encode_job splices canonical payload bytes into the envelope; hostile strings in the
    envelope (a title that spells the payload slot) cannot misplace it."""
    job = _job(body_size=3000).model_copy(
        update={
            "options": {**RenderOptions().model_dump(mode="json"), "title": 'x","payload":{}'},
            "request_id": '"payload":{}',
        }
    )
    canonical = canonical_json(job.payload)
    empty = job.model_copy(update={"payload": {}})
    body, encoding = encode_job(empty, canonical, threshold)
    assert encoding == ("gzip" if threshold == 0 else None)
    decoded = decode_job(body, encoding)
    assert decoded == job
    assert canonical_json(decoded.payload) == canonical
    with pytest.raises(ValueError):
        encode_job(job, canonical)  # the payload goes in as bytes only


def test_a_gzipped_job_reuses_the_stored_payload_gzip_as_a_member():
    job = _job(body_size=5000)
    canonical = canonical_json(job.payload)
    stored = gzip.compress(canonical, 1, mtime=0)
    body, encoding = encode_job(job.model_copy(update={"payload": {}}), canonical, 0, stored)
    assert encoding == "gzip" and stored in body
    assert gzip.decompress(body) == inflate(body, encoding, 2**20)  # any gzip reader agrees
    assert decode_job(body, encoding) == job


def test_multi_member_gzip_is_bounded_and_must_be_whole():
    two = gzip.compress(b"a" * 600, mtime=0) + gzip.compress(b"b" * 600, mtime=0)
    assert inflate(two, "gzip", 1200) == b"a" * 600 + b"b" * 600
    with pytest.raises(MessageDecodeError, match="too large"):
        inflate(two, "gzip", 1199)  # the limit counts every member
    with pytest.raises(MessageDecodeError, match="truncated"):
        inflate(two[:-5], "gzip", 2000)
    with pytest.raises(MessageDecodeError, match="corrupt"):
        inflate(two + b"trailing garbage", "gzip", 2000)


def test_status_event_round_trip_with_artifact_and_error():
    event = StatusEvent(
        task_id=uuid.uuid4(),
        snapshot_id=uuid.uuid4(),
        event="completed",
        progress=100,
        cache="miss",
        artifact=Artifact(key="a" * 64, bytes=10, pages=2, pdf_sha256="b" * 64),
        render_ms=12.5,
        error=EventError(code="x", message="y"),
        at=NOW,
        attempt=2,
    )
    body, encoding = encode(event)
    assert decode_event(body, encoding) == event


def test_unknown_schema_version_and_garbage_are_refused():
    body, _ = encode(_job())
    with pytest.raises(MessageDecodeError):
        decode_job(body.replace(b'"schema_version":1', b'"schema_version":2'))
    with pytest.raises(MessageDecodeError):
        decode_job(b"\x80\x04not json")
    with pytest.raises(MessageDecodeError):
        decode_job(body, "br")


def test_gzip_bomb_is_refused_before_it_inflates():
    bomb = gzip.compress(b"{" + b" " * (8 * 2**20) + b"}")
    with pytest.raises(MessageDecodeError, match="too large"):
        decode_job(bomb, "gzip", max_bytes=2**20)


def test_options_refuse_unknown_time_zone_and_fields():
    with pytest.raises(ValueError):
        RenderOptions(timezone="Mars/Olympus")
    with pytest.raises(ValueError):
        RenderOptions.model_validate({"page_size": "A4", "colour": "red"})
    assert RenderOptions(timezone="Europe/Berlin").timezone == "Europe/Berlin"


def _payload(*places: tuple[int | None, int | None]) -> dict:
    message = {"id": str(uuid.uuid4()), "author_id": "u", "author_name": "U", "body": "hi"}
    messages = []
    for i, (ordinal, chunk) in enumerate(places):
        extra = {k: v for k, v in (("ordinal", ordinal), ("chunk", chunk)) if v is not None}
        messages.append({**message, "created_at": NOW + dt.timedelta(minutes=i), **extra})
    return {
        "room": {"id": str(uuid.uuid4()), "name": "R", "created_at": NOW},
        "sections": ["messages"],
        "messages": messages,
    }


def test_payload_messages_carry_room_ordinals_and_chunks_or_none():
    old = SnapshotPayload.model_validate(_payload((None, None), (None, None)))
    assert [(m.ordinal, m.chunk) for m in old.messages] == [(None, None), (None, None)]
    scoped = SnapshotPayload.model_validate(_payload((49, 0), (50, 1), (120, 2)))
    assert [(m.ordinal, m.chunk) for m in scoped.messages] == [(49, 0), (50, 1), (120, 2)]


@pytest.mark.parametrize(
    ("places", "why"),
    [
        (((0, 0), (None, None)), "or none of them"),
        (((0, None),), "or none of them"),
        (((1, 0), (1, 0)), "timeline order"),
        (((2, 0), (1, 0)), "timeline order"),
        (((0, 1), (1, 0)), "timeline order"),
        (((-1, 0),), "greater than or equal to 0"),
        (((0, -1),), "greater than or equal to 0"),
    ],
)
def test_payload_refuses_ordinals_out_of_timeline_order(places, why):
    with pytest.raises(ValueError, match=why):
        SnapshotPayload.model_validate(_payload(*places))


def test_status_events_may_count_pieces():
    base = {"task_id": uuid.uuid4(), "snapshot_id": uuid.uuid4(), "event": "progress", "at": NOW}
    event = StatusEvent(**base, pieces_done=3, pieces_total=40)
    body, encoding = encode(event)
    assert decode_event(body, encoding) == event
    assert decode_event(encode(StatusEvent(**base))[0]).pieces_total is None  # optional


@pytest.mark.parametrize(
    ("pieces", "why"),
    [
        ({"pieces_done": 5, "pieces_total": 4}, "more than pieces_total"),
        ({"pieces_done": -1}, "greater than or equal to 0"),
        ({"pieces_total": -1}, "greater than or equal to 0"),
    ],
)
def test_status_events_refuse_impossible_piece_counts(pieces, why):
    base = {"task_id": uuid.uuid4(), "snapshot_id": uuid.uuid4(), "event": "progress", "at": NOW}
    with pytest.raises(MessageDecodeError, match=why):
        decode_event(json.dumps({**base, **pieces}, default=str).encode())
