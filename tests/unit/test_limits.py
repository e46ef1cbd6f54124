"""The shared input limits: body rules, weights, and a job size bound that holds in the worst
case the API can accept (so the renderer never refuses as too large what the API took)."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from snapshot_renderer.settings import Settings as RendererSettings
from snapshot_shared import limits
from snapshot_shared.hashing import canonical_json
from snapshot_shared.limits import SnapshotLimits
from snapshot_shared.messages import (
    JobOverLimits,
    MessageDecodeError,
    RenderJob,
    RenderOptions,
    decode_job,
    encode_job,
)


@pytest.mark.parametrize(
    ("body", "breaks"),
    [("", 0), ("a\nb", 1), ("a\r\nb", 1), ("a\rb", 1), ("\r\r\n\n\r", 4), ("\n\r", 2)],
)
def test_line_breaks_count_crlf_once(body, breaks):
    assert limits.line_breaks(body) == breaks


@pytest.mark.parametrize(
    "body",
    ["\x00", "\x01", "\x08", "\x0b", "\x0c", "\x0e", "\x1f", "\x7f", "\x85", "\x9f", "\u2028"],
)
def test_bodies_refuse_control_characters(body):
    assert "control characters" in (limits.body_problem(f"a{body}b") or "")


def test_bodies_keep_tab_cr_lf_and_are_bounded_in_bytes_and_line_breaks():
    assert limits.body_problem("tab\there\r\nand\rthere\n") is None
    assert limits.body_problem("é" * (limits.MESSAGE_BYTES // 2)) is None
    assert "bytes" in (limits.body_problem("é" * (limits.MESSAGE_BYTES // 2 + 1)) or "")
    assert limits.body_problem("\n" * limits.MESSAGE_LINE_BREAKS) is None
    assert "line breaks" in (limits.body_problem("\n" * (limits.MESSAGE_LINE_BREAKS + 1)) or "")


def test_weight_and_snapshot_limits():
    assert limits.message_weight("ab\r\nc") == 400 + 5 + 100
    # Color emoji: each character of the emoji blocks, and U+FE0F, adds 400; other text not.
    assert limits.message_weight("😀✅❤️") == 400 + 13 + 4 * 400
    assert limits.message_weight("→ 𝐀 é") == 400 + 11
    small = SnapshotLimits(messages=2, weight=1000, members=1)
    assert small.problem(["x", "y"], members=1) is None
    assert "3 messages" in (small.problem(["x"] * 3, members=0) or "")
    assert "weigh" in (small.problem(["x" * 601], members=0) or "")
    assert "members" in (small.problem([], members=2) or "")


def _worst_payload(lim: SnapshotLimits) -> dict:
    """A payload at every limit, made of what escapes most in JSON and is still accepted."""
    wide = '"\\😀'  # 2 + 2 + 4 bytes of JSON for 3 characters
    name = (wide * 50)[: limits.WIRE_NAME_CHARS]
    user = (wide * 50)[: limits.USER_ID_CHARS]
    at = "2026-01-01T00:00:00.000000Z"
    per_message = lim.weight // lim.messages - limits.MESSAGE_WEIGHT
    body = ('"\\' * per_message)[:per_message]  # 1 byte each, 2 in JSON
    assert limits.message_weight(body) * lim.messages <= lim.weight
    return {
        "room": {
            "id": str(uuid.uuid4()),
            "name": (wide * 80)[: limits.ROOM_NAME_CHARS],
            "created_at": at,
        },
        "sections": ["members", "messages"],
        "members": [{"user_id": user, "display_name": name, "role": "editor", "joined_at": at}]
        * lim.members,
        "messages": [
            {
                "id": str(uuid.uuid4()),
                "author_id": user,
                "author_name": name,
                "created_at": at,
                "body": body,
                "kind": "decision",
                "ordinal": 2**31 - 1,  # the widest the database stores
                "chunk": 2**31 - 1,
            }
        ]
        * lim.messages,
        "as_of": at,
    }


@pytest.mark.parametrize(
    "lim", [SnapshotLimits(), SnapshotLimits(messages=100, weight=2**20, members=10)]
)
def test_the_largest_accepted_job_fits_the_renderers_default_job_size(lim):
    payload = _worst_payload(lim)
    assert lim.problem([m["body"] for m in payload["messages"]], len(payload["members"])) is None
    options = RenderOptions(
        title=('"\\😀' * 70)[: limits.TITLE_CHARS],
        locale="zh-" + "Hant-" * 6 + "TW",
        timezone="America/Argentina/ComodRivadavia",
    ).model_dump(mode="json")
    job = RenderJob(
        task_id=uuid.uuid4(),
        snapshot_id=uuid.uuid4(),
        content_hash="0" * 64,
        options=options,
        payload={},
        requested_at=dt.datetime.now(dt.UTC),
        request_id="r" * limits.REQUEST_ID_CHARS,
    )
    body, _ = encode_job(job, canonical_json(payload))
    assert len(body) <= lim.job_bytes()
    renderer = RendererSettings(
        max_snapshot_messages=lim.messages,
        max_snapshot_weight=lim.weight,
        max_snapshot_members=lim.members,
    )
    assert renderer.max_job_bytes == lim.job_bytes()
    decoded = decode_job(body, None, renderer.max_job_bytes, renderer.snapshot_limits)
    assert len(decoded.payload["messages"]) == lim.messages


def test_the_renderer_refuses_a_job_over_the_snapshot_limits():
    lim = SnapshotLimits(messages=2, weight=2000, members=5)
    at = "2026-01-01T00:00:00Z"
    message = {"id": str(uuid.uuid4()), "author_id": "u", "author_name": "U", "created_at": at}
    job = RenderJob(
        task_id=uuid.uuid4(),
        snapshot_id=uuid.uuid4(),
        content_hash="0" * 64,
        options={},
        payload={},
        requested_at=dt.datetime.now(dt.UTC),
    )
    for bodies, why in ((["a", "b", "c"], "3 messages"), (["\n" * 20], "weigh")):
        payload = {"messages": [{**message, "body": b} for b in bodies], "members": []}
        raw, _ = encode_job(job, canonical_json(payload))
        with pytest.raises(JobOverLimits, match=why) as refused:
            decode_job(raw, None, 2**20, lim)
        assert isinstance(refused.value, MessageDecodeError)  # dead-lettered, never retried
        decode_job(raw, None, 2**20)  # without limits: only the shape is checked
