"""Revocable access: removing a member and deleting a room take effect at once, for downloads,
snapshots and tasks too; the last owner stays; a deleted room's late status event is a no-op;
every change is audited."""

from __future__ import annotations

import hashlib
import json
import uuid

import asyncpg
import pytest
import pytest_asyncio
from support.api import Api, running_api, settings_for
from support.metrics import sample
from support.pdf import fake_pdf
from support.security import (
    ADMIN,
    EDITOR,
    OWNER,
    STRANGER,
    VIEWER,
    assert_problem,
    audit_rows,
    complete,
    publish_completed,
    request_id,
)
from support.waiting import until

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def api(database_url, queue_prefix, tmp_path_factory):
    settings = settings_for(database_url, queue_prefix, tmp_path_factory.mktemp("store"))
    async with running_api(settings) as api:
        yield api


async def _room_with_snapshot(api: Api) -> tuple[str, dict[str, str]]:
    room = await api.room(OWNER, "Revocation")
    await api.add_member(room, EDITOR, "editor")
    await api.add_member(room, VIEWER, "viewer")
    await api.post_messages(room, ["one", "two"], user=EDITOR)
    created = await api.snapshot(room)
    assert created.status_code == 202, created.text
    await complete(api, created.json())
    return room, created.json()


def _paths(room: str, accepted: dict[str, str]) -> list[str]:
    snap = accepted["snapshot_id"]
    return [
        f"/api/v1/rooms/{room}",
        f"/api/v1/rooms/{room}/messages",
        f"/api/v1/rooms/{room}/snapshots",
        f"/api/v1/snapshots/{snap}",
        f"/api/v1/snapshots/{snap}/download",
        f"/api/v1/tasks/{accepted['task_id']}",
        f"/api/v1/tasks/{accepted['task_id']}/events",  # finished: its final event, then the end
    ]


async def test_a_removed_member_gets_404_at_once_downloads_included(api: Api, database_url):
    room, accepted = await _room_with_snapshot(api)
    for path in _paths(room, accepted):
        r = await api.client.get(path, headers=api.auth(VIEWER))
        assert r.status_code == 200, (path, r.status_code)
    download = _paths(room, accepted)[4]
    pdf = fake_pdf(accepted["content_hash"])
    assert (await api.client.get(download, headers=api.auth(VIEWER))).content == pdf
    rid = request_id()
    r = await api.client.delete(
        f"/api/v1/rooms/{room}/members/{VIEWER}",
        headers={**api.auth(OWNER), "X-Request-ID": rid},
    )
    assert r.status_code == 204 and r.content == b""
    for path in _paths(room, accepted):
        assert_problem(await api.client.get(path, headers=api.auth(VIEWER)), 404, "not_found")
    # The others keep their access; the removal is audited with whom and which role.
    r = await api.client.get(download, headers=api.auth(EDITOR))
    assert r.status_code == 200 and r.content == pdf
    (row,) = await audit_rows(database_url, rid)
    assert (row["actor"], row["action"], row["outcome"]) == (OWNER, "member.remove", "removed")
    assert (str(row["room_id"]), row["subject"]) == (room, VIEWER)
    assert json.loads(row["detail"]) == {"from": "viewer", "to": None}
    # Removing them again: they are not a member any more.
    r = await api.client.delete(f"/api/v1/rooms/{room}/members/{VIEWER}", headers=api.auth(OWNER))
    assert_problem(r, 404, "not_found")


async def test_members_may_leave_but_not_remove_others(api: Api, database_url):
    room = await api.room(OWNER, "Leaving")
    await api.add_member(room, EDITOR, "editor")
    await api.add_member(room, VIEWER, "viewer")
    base = f"/api/v1/rooms/{room}/members/"
    r = await api.client.delete(base + VIEWER, headers=api.auth(EDITOR))
    assert_problem(r, 403, "forbidden")
    r = await api.client.delete(base + OWNER, headers=api.auth(VIEWER))
    assert_problem(r, 403, "forbidden")
    r = await api.client.delete(base + VIEWER, headers=api.auth(STRANGER))
    assert_problem(r, 404, "not_found")
    r = await api.client.delete(base + STRANGER, headers=api.auth(STRANGER))
    assert_problem(r, 404, "not_found")  # leaving a room one is not in: no existence oracle
    rid = request_id()
    r = await api.client.delete(base + EDITOR, headers={**api.auth(EDITOR), "X-Request-ID": rid})
    assert r.status_code == 204
    assert_problem(await api.client.get(f"/api/v1/rooms/{room}", headers=api.auth(EDITOR)), 404)
    (row,) = await audit_rows(database_url, rid)
    assert (row["actor"], row["action"], row["outcome"], row["subject"]) == (
        EDITOR,
        "member.remove",
        "left",
        EDITOR,
    )
    r = await api.client.get(f"/api/v1/rooms/{room}", headers=api.auth(OWNER))
    assert r.json()["member_count"] == 2


async def test_the_last_owner_can_neither_leave_nor_be_removed(api: Api):
    room = await api.room("oscar", "Solo")
    path = f"/api/v1/rooms/{room}/members/oscar"
    assert_problem(await api.client.delete(path, headers=api.auth("oscar")), 409, "last_owner")
    r = await api.client.delete(path, headers=api.auth(ADMIN, admin=True))
    assert_problem(r, 409, "last_owner")
    await api.add_member(room, "olga", "owner", owner="oscar")
    assert (await api.client.delete(path, headers=api.auth("oscar"))).status_code == 204
    olga = f"/api/v1/rooms/{room}/members/olga"
    assert_problem(await api.client.delete(olga, headers=api.auth("olga")), 409, "last_owner")
    r = await api.client.get(f"/api/v1/rooms/{room}", headers=api.auth("olga"))
    assert r.status_code == 200 and r.json()["member_count"] == 1


async def test_role_changes_are_audited_with_old_and_new_role(api: Api, database_url):
    room = await api.room(OWNER, "Roles")
    path = f"/api/v1/rooms/{room}/members/{EDITOR}"
    steps = [(None, "viewer", "added"), ("viewer", "editor", "changed")]
    for old, new, outcome in steps:
        rid = request_id()
        r = await api.client.put(
            path, json={"role": new}, headers={**api.auth(OWNER), "X-Request-ID": rid}
        )
        assert r.status_code in (200, 201)
        (row,) = await audit_rows(database_url, rid)
        assert (row["actor"], row["action"], row["outcome"], row["subject"]) == (
            OWNER,
            "member.role",
            outcome,
            EDITOR,
        )
        assert json.loads(row["detail"]) == {"from": old, "to": new}
        trail = await api.client.get(
            "/api/v1/audit", params={"limit": 10}, headers=api.auth(ADMIN, admin=True)
        )
        (entry,) = [e for e in trail.json()["items"] if e["request_id"] == rid]
        assert (entry["subject"], entry["detail"], entry["count"]) == (
            EDITOR,
            {"from": old, "to": new},
            1,
        )
    # The same role again changes nothing and is not an entry.
    rid = request_id()
    r = await api.client.put(
        path, json={"role": "editor"}, headers={**api.auth(OWNER), "X-Request-ID": rid}
    )
    assert r.status_code == 200 and await audit_rows(database_url, rid) == []


async def _publish_completed(api: Api, accepted: dict[str, str]) -> None:
    await publish_completed(api, accepted, hashlib.sha256(b"late").hexdigest())


async def _room_rows(database_url: str, room: str) -> dict[str, int]:
    conn = await asyncpg.connect(database_url)
    try:
        rid = uuid.UUID(room)
        return {
            "rooms": await conn.fetchval("SELECT count(*) FROM rooms WHERE id = $1", rid),
            "members": await conn.fetchval("SELECT count(*) FROM members WHERE room_id = $1", rid),
            "messages": await conn.fetchval(
                "SELECT count(*) FROM messages WHERE room_id = $1", rid
            ),
            "snapshots": await conn.fetchval(
                "SELECT count(*) FROM snapshots WHERE room_id = $1", rid
            ),
            "tasks": await conn.fetchval(
                "SELECT count(*) FROM tasks t JOIN snapshots s ON s.id = t.snapshot_id"
                " WHERE s.room_id = $1",
                rid,
            ),
        }
    finally:
        await conn.close()


async def test_a_deleted_room_is_gone_for_everyone_and_late_events_are_no_ops(
    api: Api, database_url
):
    room, accepted = await _room_with_snapshot(api)
    pending = await api.snapshot(room, user=EDITOR, body={"options": {"title": "in flight"}})
    assert pending.status_code == 202, pending.text
    other, other_accepted = await _room_with_snapshot(api)
    before_other = await _room_rows(database_url, other)
    assert (await _room_rows(database_url, room))["tasks"] == 2
    r = await api.client.delete(f"/api/v1/rooms/{room}", headers=api.auth(EDITOR))
    assert_problem(r, 403, "forbidden")
    rid = request_id()
    r = await api.client.delete(
        f"/api/v1/rooms/{room}", headers={**api.auth(OWNER), "X-Request-ID": rid}
    )
    assert r.status_code == 204
    assert await _room_rows(database_url, room) == {
        "rooms": 0,
        "members": 0,
        "messages": 0,
        "snapshots": 0,
        "tasks": 0,
    }
    for user in (OWNER, EDITOR, VIEWER):
        for path in _paths(room, accepted) + [f"/api/v1/tasks/{pending.json()['task_id']}"]:
            assert_problem(await api.client.get(path, headers=api.auth(user)), 404, "not_found")
    (row,) = await audit_rows(database_url, rid)
    assert (row["actor"], row["action"], row["outcome"], str(row["room_id"])) == (
        OWNER,
        "room.delete",
        "deleted",
        room,
    )
    assert_problem(await api.client.delete(f"/api/v1/rooms/{room}", headers=api.auth(OWNER)), 404)

    # The in-flight render's late 'completed' event: consumed, applied to nothing.
    async def not_applied() -> float:
        text = (await api.client.get("/metrics")).text
        return sample(text, "snapshot_api_status_events_total", event="completed", applied="false")

    seen = await not_applied()
    await _publish_completed(api, pending.json())

    async def consumed() -> bool:
        return await not_applied() > seen

    await until(consumed, what="the late status event to be consumed")
    assert (await _room_rows(database_url, room))["snapshots"] == 0
    # The other room is untouched and still serves its PDF.
    assert await _room_rows(database_url, other) == before_other
    r = await api.client.get(
        f"/api/v1/snapshots/{other_accepted['snapshot_id']}/download", headers=api.auth(VIEWER)
    )
    assert r.status_code == 200 and r.content == fake_pdf(other_accepted["content_hash"])
