"""Level 5: snapshot create, download and delete leave an audit entry in the same transaction as
their effect (no effect without its entry); denials are audited; admins page through it all."""

from __future__ import annotations

import uuid

import asyncpg
import httpx
import pytest
import pytest_asyncio
from support.api import Api
from support.security import (
    ADMIN,
    OWNER,
    STRANGER,
    VIEWER,
    api_refusing_audit,
    assert_problem,
    audit_rows,
    complete,
    request_id,
    table_counts,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")
BREAKER = "audit-breaker"  # every audit insert with this actor fails (a trigger, below)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def api(database_url, queue_prefix, tmp_path_factory):
    store = tmp_path_factory.mktemp("store")
    async with api_refusing_audit(database_url, queue_prefix, store, BREAKER) as api:
        yield api


def lenient(api: Api) -> httpx.AsyncClient:
    """A client that gets the 500 answer instead of the app's exception."""
    transport = httpx.ASGITransport(app=api.app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://api.test")


async def test_create_download_delete_are_audited_with_who_what_where(api, database_url):
    room = await api.room(OWNER)
    await api.add_member(room, VIEWER, "viewer")
    await api.post_messages(room, ["a", "b"])
    rids = [request_id() for _ in range(3)]
    created = await api.snapshot(room, headers={"X-Request-ID": rids[0]})
    snap = created.json()["snapshot_id"]
    await complete(api, created.json())
    r = await api.client.get(
        f"/api/v1/snapshots/{snap}/download", headers={**api.auth(VIEWER), "X-Request-ID": rids[1]}
    )
    assert r.status_code == 200
    r = await api.client.delete(
        f"/api/v1/snapshots/{snap}", headers={**api.auth(OWNER), "X-Request-ID": rids[2]}
    )
    assert r.status_code == 204
    expected = [
        (OWNER, "snapshot.create", "accepted"),
        (VIEWER, "snapshot.download", "served"),
        (OWNER, "snapshot.delete", "deleted"),
    ]
    for rid, (actor, action, outcome) in zip(rids, expected, strict=True):
        (row,) = await audit_rows(database_url, rid)
        assert (row["actor"], row["action"], row["outcome"]) == (actor, action, outcome)
        assert (str(row["room_id"]), str(row["snapshot_id"])) == (room, snap)
        assert row["client_addr"] == "127.0.0.1" and row["at"] is not None


async def test_no_snapshot_is_created_or_deleted_without_its_audit_entry(api, database_url):
    room = await api.room(BREAKER, "Audited room")
    await api.post_messages(room, ["x"], user=BREAKER)
    before = await table_counts(database_url)
    async with lenient(api) as client:
        r = await client.post(f"/api/v1/rooms/{room}/snapshots", json={}, headers=api.auth(BREAKER))
    assert_problem(r, 500, "internal_error")
    assert "audit refused" not in r.text
    assert await table_counts(database_url) == before  # snapshot, task, payload, outbox: none

    # Behind the API's back: a member change by BREAKER is audited too, so it would be refused.
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "INSERT INTO members (room_id, user_id, display_name, role)"
            " VALUES ($1, $2, $2, 'owner')",
            uuid.UUID(room),
            OWNER,
        )
    finally:
        await conn.close()
    created = await api.snapshot(room, user=OWNER)
    snap = created.json()["snapshot_id"]
    await complete(api, created.json())
    async with lenient(api) as client:
        r = await client.delete(f"/api/v1/snapshots/{snap}", headers=api.auth(BREAKER))
        assert_problem(r, 500, "internal_error")
        r = await client.get(f"/api/v1/snapshots/{snap}/download", headers=api.auth(BREAKER))
        assert_problem(r, 500, "internal_error")  # no PDF leaves without its audit entry
    r = await api.client.get(f"/api/v1/snapshots/{snap}", headers=api.auth(OWNER))
    assert r.status_code == 200  # the failed delete left the snapshot in place


async def test_denials_are_audited_and_answer_like_any_other_denial(api, database_url):
    room = await api.room(OWNER)
    await api.add_member(room, VIEWER, "viewer")
    cases = [
        ("GET", f"/api/v1/rooms/{room}", {}, 401, "room.read", None),
        ("GET", f"/api/v1/rooms/{room}", api.auth(STRANGER), 404, "room.read", STRANGER),
        (
            "POST",
            f"/api/v1/rooms/{room}/snapshots",
            api.auth(VIEWER),
            403,
            "snapshot.create",
            VIEWER,
        ),
        ("GET", f"/api/v1/tasks/{uuid.uuid4()}", api.auth(VIEWER), 404, "task.read", VIEWER),
        ("GET", "/api/v1/audit", api.auth(VIEWER), 403, "admin.audit", VIEWER),
    ]
    for method, path, headers, status, action, actor in cases:
        rid = request_id()
        r = await api.client.request(
            method, path, json={}, headers={**headers, "X-Request-ID": rid}
        )
        assert_problem(r, status)
        (row,) = await audit_rows(database_url, rid)
        assert (row["action"], row["actor"]) == (action, actor)
        assert row["outcome"] == {401: "denied_unauthenticated", 403: "denied_forbidden"}.get(
            status, "denied_not_found"
        )
        if "/rooms/" in path:
            assert str(row["room_id"]) == room
    # Validation errors and unknown routes are not denials.
    for path in ("/api/v1/rooms/not-a-uuid", "/api/v1/no-such-thing"):
        rid = request_id()
        r = await api.client.get(path, headers={**api.auth(STRANGER), "X-Request-ID": rid})
        assert r.status_code in (404, 422) and await audit_rows(database_url, rid) == []


async def test_denied_task_reads_name_the_tasks_snapshot_and_room(api, database_url):
    room = await api.room(OWNER)
    await api.post_messages(room, ["t"])
    accepted = (await api.snapshot(room)).json()
    rid = request_id()
    r = await api.client.get(
        f"/api/v1/tasks/{accepted['task_id']}",
        headers={**api.auth(STRANGER), "X-Request-ID": rid},
    )
    assert_problem(r, 404, "not_found")
    (row,) = await audit_rows(database_url, rid)
    assert (str(row["room_id"]), str(row["snapshot_id"])) == (room, accepted["snapshot_id"])


async def test_admin_pages_through_the_whole_trail(api, database_url):
    room = await api.room(OWNER)
    await api.post_messages(room, ["p"])
    for _ in range(7):
        assert (await api.snapshot(room)).status_code == 202
    conn = await asyncpg.connect(database_url)
    try:
        total = await conn.fetchval("SELECT count(*) FROM audit")
    finally:
        await conn.close()
    seen: list[int] = []
    cursor = None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        r = await api.client.get("/api/v1/audit", params=params, headers=api.auth(ADMIN, True))
        assert r.status_code == 200
        page = r.json()
        assert len(page["items"]) <= 3
        seen += [e["id"] for e in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    # Newest first, no gaps, no repeats; this test's own admin reads are not audited.
    assert seen == sorted(seen, reverse=True) and len(seen) == len(set(seen)) == total
    newest = (await api.client.get("/api/v1/audit", headers=api.auth(ADMIN, True))).json()
    entry = newest["items"][0]
    assert set(entry) == {
        "id", "at", "actor", "action", "room_id", "snapshot_id", "outcome", "request_id",
        "client_addr", "subject", "detail", "count",
    }  # fmt: skip
    assert entry["action"] == "snapshot.create" and entry["room_id"] == room
    assert (entry["subject"], entry["detail"], entry["count"]) == (None, None, 1)
