"""Input bounds and idempotency at the API's edges (issue 10), against the real PostgreSQL and
RabbitMQ: each refusal is a 4xx problem with a stable code and writes nothing."""

from __future__ import annotations

import asyncio
import uuid

import aio_pika
import asyncpg
import pytest
import pytest_asyncio
from aio_pika.abc import AbstractIncomingMessage
from snapshot_shared import limits
from snapshot_shared.messages import SnapshotPayload, decode_job
from support.api import running_api, settings_for
from support.security import assert_problem, table_counts
from support.services import AMQP_URL
from support.waiting import until

pytestmark = pytest.mark.asyncio(loop_scope="module")
WEIGHT = 50_000  # three 16 KiB messages are over it, two are not
MEMBERS = 3


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def api(database_url, queue_prefix, tmp_path_factory):
    settings = settings_for(
        database_url,
        queue_prefix,
        tmp_path_factory.mktemp("store"),
        max_snapshot_weight=WEIGHT,
        max_snapshot_members=MEMBERS,
    )
    async with running_api(settings) as api:
        yield api


async def _published_job(queue_name: str, task_id: str) -> AbstractIncomingMessage:
    """The job the outbox relay published for ``task_id`` (its row is gone once confirmed);
    other tests' jobs on this module's queue are taken off it on the way."""
    connection = await aio_pika.connect(AMQP_URL)
    try:
        channel = await connection.channel()
        queue = await channel.declare_queue(queue_name, passive=True)

        async def probe() -> AbstractIncomingMessage | None:
            while (message := await queue.get(no_ack=True, fail=False)) is not None:
                if message.correlation_id == task_id:
                    return message
            return None

        return await until(probe, what=f"the job of task {task_id} on {queue_name}")
    finally:
        await connection.close()


async def _rows(database_url: str, query: str, *args) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(database_url)
    try:
        return list(await conn.fetch(query, *args))
    finally:
        await conn.close()


async def test_an_idempotency_key_of_a_deleted_snapshot_creates_a_new_one(api, database_url):
    room = await api.room("olivia", "Idempotency after delete")
    await api.post_messages(room, ["one"])
    key = {"Idempotency-Key": "reused-after-delete"}
    first = await api.snapshot(room, headers=key)
    assert first.status_code == 202, first.text
    replay = await api.snapshot(room, headers=key)
    assert replay.status_code == 202 and replay.json() == first.json()
    old = first.json()["snapshot_id"]
    deleted = await api.client.delete(f"/api/v1/snapshots/{old}", headers=api.auth("olivia"))
    assert deleted.status_code == 204

    again = await api.snapshot(room, headers=key)
    assert again.status_code == 202, again.text
    new = again.json()["snapshot_id"]
    assert new != old
    replay = await api.snapshot(room, headers=key)
    assert replay.status_code == 202 and replay.json() == again.json()
    rows = await _rows(
        database_url,
        "SELECT id, deleted_at IS NOT NULL AS deleted FROM snapshots"
        " WHERE idempotency_key = $1 ORDER BY created_at",
        key["Idempotency-Key"],
    )
    assert [(str(r["id"]), r["deleted"]) for r in rows] == [(old, True), (new, False)]


async def test_concurrent_reuse_of_a_deleted_snapshots_key_still_makes_one(api, database_url):
    room = await api.room("olivia", "Concurrent reuse")
    await api.post_messages(room, ["one"])
    key = {"Idempotency-Key": "concurrent-after-delete"}
    first = await api.snapshot(room, headers=key)
    assert first.status_code == 202, first.text
    gone = await api.client.delete(
        f"/api/v1/snapshots/{first.json()['snapshot_id']}", headers=api.auth("olivia")
    )
    assert gone.status_code == 204
    answers = await asyncio.gather(*(api.snapshot(room, headers=key) for _ in range(6)))
    assert [a.status_code for a in answers] == [202] * 6, [a.text for a in answers]
    assert len({a.json()["snapshot_id"] for a in answers}) == 1
    live = await _rows(
        database_url,
        "SELECT id FROM snapshots WHERE idempotency_key = $1 AND deleted_at IS NULL",
        key["Idempotency-Key"],
    )
    assert [str(r["id"]) for r in live] == [answers[0].json()["snapshot_id"]]


async def test_locale_and_other_strings_are_bounded_and_the_schema_says_so(api, database_url):
    room = await api.room("olivia", "Locales")
    await api.post_messages(room, ["one"])
    before = await table_counts(database_url)
    for options in (
        {"locale": "de-" + "x" * 900_000},
        {"locale": "en-" + "abcdefgh-" * 3 + "abcdef"},  # 36 characters, matches the pattern
        {"title": "t" * 201},
        {"timezone": "Europe/" + "x" * 100},
    ):
        r = await api.snapshot(room, body={"options": options})
        problem = assert_problem(r, 422, "validation_error")
        assert problem["errors"][0]["loc"][:3] == ["body", "options", next(iter(options))]
    assert await table_counts(database_url) == before
    ok = await api.snapshot(room, body={"options": {"locale": "en-" + "abcdefgh-" * 3 + "abcde"}})
    assert ok.status_code == 202, ok.text

    schema = (await api.client.get("/openapi.json")).json()["components"]["schemas"]
    options = schema["SnapshotOptions"]["properties"]
    assert options["locale"]["maxLength"] == limits.LOCALE_CHARS
    assert options["timezone"]["maxLength"] == limits.TIMEZONE_CHARS
    assert options["title"]["anyOf"][0]["maxLength"] == limits.TITLE_CHARS
    assert schema["RoomCreate"]["properties"]["name"]["maxLength"] == limits.ROOM_NAME_CHARS
    display = schema["MemberPut"]["properties"]["display_name"]["anyOf"][0]
    assert display["maxLength"] == limits.DISPLAY_NAME_CHARS
    body = schema["MessageIn"]["properties"]["body"]
    assert body["maxLength"] == limits.MESSAGE_BYTES and body["pattern"] == limits.BODY_PATTERN


async def test_message_bodies_refuse_control_characters_and_too_many_line_breaks(api, database_url):
    room = await api.room("olivia", "Bodies")
    path = f"/api/v1/rooms/{room}/messages"
    before = await table_counts(database_url)
    refused = [
        ("bell\x07", "control characters"),
        ("escape \x1b[31m red", "control characters"),
        ("next line\x85", "control characters"),
        ("vertical\x0btab", "control characters"),
        ("line\u2028separator", "U+2028"),
        ("\n" * (limits.MESSAGE_LINE_BREAKS + 1), "line breaks"),
        ("\r\n" * limits.MESSAGE_LINE_BREAKS + "\r", "line breaks"),
        ("\x01" * 16384, "control characters"),
    ]
    for body, why in refused:
        for payload in ({"body": body}, {"messages": [{"body": "fine"}, {"body": body}]}):
            r = await api.client.post(path, json=payload, headers=api.auth("olivia"))
            problem = assert_problem(r, 422, "validation_error")
            assert why in problem["detail"], problem["detail"]
    assert await table_counts(database_url) == before
    accepted = [
        "tab\tand\r\nCRLF and\rCR and\nLF",
        "\n" * limits.MESSAGE_LINE_BREAKS,
        "\r\n" * limits.MESSAGE_LINE_BREAKS,
        '"\\' * (limits.MESSAGE_BYTES // 2),
    ]
    r = await api.client.post(
        path, json={"messages": [{"body": b} for b in accepted]}, headers=api.auth("olivia")
    )
    assert r.status_code == 201, r.text


async def test_the_stored_weight_is_the_shared_weight(api, database_url):
    room = await api.room("olivia", "Weights")
    bodies = [
        "plain",
        "é€😀",
        "a\r\nb\nc\rd\r\re\n\n",
        "\r\n" * 7 + "\r",
        '"\\' * 100,
        "😀🎉👍🏽❤️🧪✅ 1️⃣ ⌚ ⭐ 🇩🇪 ❤ 𝐀",
    ]
    created = await api.post_messages(room, bodies)
    rows = await _rows(
        database_url,
        "SELECT body, weight FROM messages WHERE id = ANY($1::uuid[])",
        [uuid.UUID(m["id"]) for m in created],
    )
    assert sorted((r["body"], r["weight"]) for r in rows) == sorted(
        (b, limits.message_weight(b)) for b in bodies
    )


async def test_a_snapshot_over_the_weight_limit_is_413_and_writes_nothing(api, database_url):
    room = await api.room("olivia", "Heavy room")
    big = "w" * limits.MESSAGE_BYTES
    first = await api.post_messages(room, [big, big])
    two = await api.snapshot(room)  # 2 x 16,784: within the limit
    assert two.status_code == 202, two.text
    await api.post_messages(room, [big])
    before = await table_counts(database_url)
    problem = assert_problem(await api.snapshot(room), 413, "snapshot_too_large")
    assert problem["limit"] == WEIGHT and problem["weight"] == 3 * limits.message_weight(big)
    assert await table_counts(database_url) == before
    # Narrowing the scope to the first two messages is accepted again.
    scope = {"scope": {"to": first[1]["created_at"]}}
    assert (await api.snapshot(room, body=scope)).status_code == 202

    lines = await api.room("olivia", "Line breaks")
    await api.post_messages(lines, ["\n" * limits.MESSAGE_LINE_BREAKS])  # weighs 50,900
    before = await table_counts(database_url)
    problem = assert_problem(await api.snapshot(lines), 413, "snapshot_too_large")
    assert problem["weight"] == limits.message_weight("\n" * limits.MESSAGE_LINE_BREAKS)
    assert await table_counts(database_url) == before

    # Color emoji lay out ~100x slower than text: 130 of them weigh 52 KB of text.
    emoji = await api.room("olivia", "Emoji")
    await api.post_messages(emoji, ["😀" * 130, "ok"])
    before = await table_counts(database_url)
    problem = assert_problem(await api.snapshot(emoji), 413, "snapshot_too_large")
    assert problem["weight"] == limits.message_weight("😀" * 130) + limits.message_weight("ok")
    assert await table_counts(database_url) == before


async def test_a_snapshot_of_too_many_members_is_413_unless_members_are_left_out(api, database_url):
    room = await api.room("olivia", "Crowded room")
    for user in ("eddie", "vera", "ivan"):
        await api.add_member(room, user, "viewer")
    await api.post_messages(room, ["one"])
    before = await table_counts(database_url)
    problem = assert_problem(await api.snapshot(room), 413, "snapshot_too_large")
    assert problem["limit"] == MEMBERS and "members" in problem["detail"]
    assert await table_counts(database_url) == before
    only_messages = {"scope": {"sections": ["messages"]}}
    assert (await api.snapshot(room, body=only_messages)).status_code == 202


async def test_a_job_of_the_longest_names_the_api_accepts_is_a_valid_job(api, database_url):
    # Added without a display name, a member is shown by user id, longer than display names.
    user = "u" * limits.USER_ID_CHARS
    room = await api.room("olivia", "n" * limits.ROOM_NAME_CHARS)
    r = await api.client.put(
        f"/api/v1/rooms/{room}/members/{user}", json={"role": "editor"}, headers=api.auth("olivia")
    )
    assert r.status_code == 201, r.text
    await api.post_messages(room, ["hello"], user=user)
    options = {"title": "t" * limits.TITLE_CHARS, "locale": "xyz" + "-abcdefgh" * 3}
    created = await api.snapshot(room, user=user, body={"options": options})
    assert created.status_code == 202, created.text
    message = await _published_job(api.settings.topology.jobs_queue, created.json()["task_id"])
    job = decode_job(message.body, message.content_encoding, 2**20, api.settings.snapshot_limits)
    payload = SnapshotPayload.model_validate(job.payload)
    assert user in [m.display_name for m in payload.members]
    assert payload.messages[0].author_name == user
