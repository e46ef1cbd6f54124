"""Level 4: the snapshot scope is validated, bounded, and the frozen payload holds exactly what
it allows (read back from the payloads table), nothing more."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import re

import asyncpg
import pytest
import pytest_asyncio
from snapshot_api.db import manifests
from snapshot_shared.hashing import payload_content_hash
from support.api import Api, running_api, settings_for
from support.security import EDITOR, OWNER, VIEWER, assert_problem, table_counts

pytestmark = pytest.mark.asyncio(loop_scope="module")
LIMIT = 8
CANONICAL_TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def api(database_url, queue_prefix, tmp_path_factory):
    settings = settings_for(
        database_url,
        queue_prefix,
        tmp_path_factory.mktemp("store"),
        max_snapshot_messages=LIMIT,
    )
    async with running_api(settings) as api:
        yield api


async def frozen(database_url: str, digest: str) -> dict:
    conn = await asyncpg.connect(database_url)
    try:
        body = await manifests.payload_gzip(conn, digest)
    finally:
        await conn.close()
    return json.loads(gzip.decompress(body))


async def post_one_by_one(api: Api, room: str, bodies: list[str]) -> list[dict]:
    """Messages in separate requests, so each has its own server timestamp."""
    out = []
    for body in bodies:
        r = await api.client.post(
            f"/api/v1/rooms/{room}/messages", json={"body": body}, headers=api.auth(EDITOR)
        )
        assert r.status_code == 201, r.text
        out.append(r.json())
    return out


def when(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


BAD_SCOPES = [
    {"scope": {"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"}},
    {"scope": {"sections": ["members", "secrets"]}},
    {"scope": {"sections": ["messages", "messages"]}},
    {"scope": {"sections": []}},
    {"scope": {"sections": "messages"}},
    {"scope": {"from": "2026-01-02T00:00:00"}},
    {"scope": {"from": "yesterday"}},
    {"scope": {"from": "1969-12-31T23:59:59Z"}},
    {"scope": {"to": "2100-01-01T00:00:01Z"}},
    {"scope": {"to": "9999-12-31T23:59:59-05:00"}},
    {"scope": {"from": "0001-01-01T00:00:00+05:00"}},
    {"scope": {"until": "2026-01-01T00:00:00Z"}},
    {"scope": None},
    {"options": {"timezone": "Mars/Olympus"}},
    {"options": {"timezone": "../../../../etc/passwd"}},
    {"options": {"timezone": "/etc/localtime"}},
    {"options": {"page_size": "A0"}},
    {"options": {"title": "t" * 201}},
    {"options": {"title": "two\nlines"}},
    {"options": {"title": "nul\u0000"}},
    {"options": {"locale": "en; DROP TABLE rooms"}},
    {"options": {"template": "../../etc/passwd"}},
    {"unknown": True},
    [],
]


async def test_bad_scopes_and_options_are_refused_and_write_nothing(api, database_url):
    room = await api.room(OWNER)
    await api.add_member(room, EDITOR, "editor")
    await post_one_by_one(api, room, ["one"])
    before = await table_counts(database_url)
    for body in BAD_SCOPES:
        r = await api.snapshot(room, user=EDITOR, body=body)
        problem = assert_problem(r, 422, "validation_error")
        assert problem["errors"] and problem["detail"], body
    r = await api.snapshot(room, user=EDITOR, headers={"Idempotency-Key": "bad\x01key"})
    assert_problem(r, 422, "validation_error")
    assert await table_counts(database_url) == before


async def test_a_scope_over_the_message_limit_is_413_naming_the_limit(api, database_url):
    room = await api.room(OWNER)
    await api.add_member(room, EDITOR, "editor")
    posted = await post_one_by_one(api, room, [f"m{i}" for i in range(LIMIT + 2)])
    before = await table_counts(database_url)
    for body in (None, {"scope": {"sections": ["messages"]}}):
        r = await api.snapshot(room, user=EDITOR, body=body)
        problem = assert_problem(r, 413, "snapshot_too_large")
        assert problem["limit"] == LIMIT and str(LIMIT) in problem["detail"]
    assert await table_counts(database_url) == before
    # Narrowed to the limit it is accepted; members alone never count against it.
    narrowed = {"scope": {"from": posted[2]["created_at"]}}
    assert (await api.snapshot(room, user=EDITOR, body=narrowed)).status_code == 202
    only_members = {"scope": {"sections": ["members"]}}
    assert (await api.snapshot(room, user=EDITOR, body=only_members)).status_code == 202


async def test_frozen_payload_holds_exactly_the_scope(api, database_url):
    room = await api.room(OWNER, "Scoped room")
    await api.add_member(room, EDITOR, "editor")
    await api.add_member(room, VIEWER, "viewer")
    other = await api.room("ivan", "Elsewhere")
    await api.post_messages(other, ["not this room"], user="ivan")
    posted = await post_one_by_one(api, room, ["before", "first in", "middle", "last in", "after"])
    scope = {"from": posted[1]["created_at"], "to": posted[3]["created_at"]}

    r = await api.snapshot(room, user=EDITOR, body={"scope": {**scope, "sections": ["messages"]}})
    assert r.status_code == 202, r.text
    payload = await frozen(database_url, r.json()["content_hash"])
    assert payload["sections"] == ["messages"] and payload["members"] == []
    assert [m["body"] for m in payload["messages"]] == ["first in", "middle", "last in"]
    assert [m["id"] for m in payload["messages"]] == [m["id"] for m in posted[1:4]]
    fields = {"id", "author_id", "author_name", "created_at", "body", "kind", "ordinal", "chunk"}
    for message in payload["messages"]:
        assert set(message) == fields
        assert when(scope["from"]) <= when(message["created_at"]) <= when(scope["to"])
    # The room's ordinals and chunks, as the messages were posted, not positions in the scope.
    assert [m["ordinal"] for m in posted] == [0, 1, 2, 3, 4]
    assert [(m["ordinal"], m["chunk"]) for m in payload["messages"]] == [(1, 0), (2, 0), (3, 0)]
    assert set(payload) == {"room", "sections", "members", "messages", "as_of"}
    assert set(payload["room"]) == {"id", "name", "created_at"} and payload["room"]["id"] == room
    # Canonical timestamps (DESIGN §3): UTC, microseconds, "Z", the same instant as posted.
    stamps = [payload["room"]["created_at"], payload["as_of"]]
    stamps += [m["created_at"] for m in payload["messages"]]
    assert all(CANONICAL_TS.fullmatch(s) for s in stamps), stamps
    assert [when(m["created_at"]) for m in payload["messages"]] == [
        when(m["created_at"]) for m in posted[1:4]
    ]
    assert when(payload["as_of"]) == when(posted[3]["created_at"])
    snapshot = (
        await api.client.get(
            f"/api/v1/snapshots/{r.json()['snapshot_id']}", headers=api.auth(VIEWER)
        )
    ).json()
    assert snapshot["message_count"] == 3
    digest = payload_content_hash(payload, snapshot["options"], "snapshot", 2)
    assert digest == r.json()["content_hash"]

    r = await api.snapshot(room, user=EDITOR, body={"scope": {**scope, "sections": ["members"]}})
    payload = await frozen(database_url, r.json()["content_hash"])
    assert payload["sections"] == ["members"] and payload["messages"] == []
    assert payload["as_of"] is None
    assert [(m["user_id"], m["role"]) for m in payload["members"]] == [
        (OWNER, "owner"),
        (EDITOR, "editor"),
        (VIEWER, "viewer"),
    ]
    for member in payload["members"]:
        assert set(member) == {"user_id", "display_name", "role", "joined_at"}
        assert CANONICAL_TS.fullmatch(member["joined_at"]), member

    # Section order does not matter; a message posted later changes nothing already frozen.
    both = await api.snapshot(room, user=EDITOR, body={"scope": {**scope}})
    swapped = {"scope": {**scope, "sections": ["messages", "members"]}}
    again = await api.snapshot(room, user=EDITOR, body=swapped)
    assert both.json()["content_hash"] == again.json()["content_hash"]
    await post_one_by_one(api, room, ["much later"])
    payload = await frozen(database_url, both.json()["content_hash"])
    assert "much later" not in json.dumps(payload) and "not this room" not in json.dumps(payload)
    assert len(payload["messages"]) == 3 and len(payload["members"]) == 3
