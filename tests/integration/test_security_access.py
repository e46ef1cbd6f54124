"""Levels 2, 3 and 5: every endpoint × every role, answered and audited as the table says.

One API and one room (owner, editor, viewer, a completed snapshot) serve the whole module; each
case sends one request with its own X-Request-ID and then reads the audit rows of that id.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

import httpx
import pytest
import pytest_asyncio
from support.api import Api, running_api, settings_for
from support.security import (
    ADMIN,
    EDITOR,
    FAKE_PDF,
    OWNER,
    STRANGER,
    VIEWER,
    World,
    assert_problem,
    audit_rows,
    build_world,
    request_id,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")
ROLES = ("anonymous", "stranger", "viewer", "editor", "owner", "admin")
USERS = {"stranger": STRANGER, "viewer": VIEWER, "editor": EDITOR, "owner": OWNER, "admin": ADMIN}
RANK = {"viewer": 1, "editor": 2, "owner": 3}


@dataclass
class Env:
    api: Api
    world: World
    database_url: str


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def env(database_url, queue_prefix, tmp_path_factory):
    settings = settings_for(database_url, queue_prefix, tmp_path_factory.mktemp("store"))
    async with running_api(settings) as api:
        yield Env(api, await build_world(api), database_url)


Prepare = Callable[[Env], Awaitable[dict[str, str]]]


async def _world_ids(env: Env) -> dict[str, str]:
    w = env.world
    return {"room": w.room, "snapshot": w.snapshot, "task": w.task, "user": uuid.uuid4().hex}


async def _fresh_snapshot(env: Env) -> dict[str, str]:
    """DELETE needs a snapshot of its own in every case."""
    r = await env.api.snapshot(env.world.room, user=OWNER)
    assert r.status_code == 202, r.text
    return {**(await _world_ids(env)), "snapshot": r.json()["snapshot_id"]}


async def _fresh_room(env: Env) -> dict[str, str]:
    """DELETE of a room needs a room of its own (every role a member) in every case."""
    room = await env.api.room(OWNER, "Doomed room")
    await env.api.add_member(room, EDITOR, "editor", owner=OWNER)
    await env.api.add_member(room, VIEWER, "viewer", owner=OWNER)
    return {**(await _world_ids(env)), "room": room}


async def _fresh_member(env: Env) -> dict[str, str]:
    """DELETE of a member needs a member of its own (a viewer) in every case."""
    ids = await _world_ids(env)
    await env.api.add_member(env.world.room, ids["user"], "viewer", owner=OWNER)
    return ids


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    who: str  # anyone | user | viewer | editor | owner | admin
    ok: int
    action: str | None = None  # audit action of a denial (room resources and admin pages)
    audited_ok: tuple[str, str] | None = None  # (action, outcome) written on success
    body: Any = None
    prepare: Prepare = _world_ids
    admin_access: bool = False  # an admin (not a member) succeeding is audited as room access


ROOM = "/api/v1/rooms/{room}"
SNAP = "/api/v1/snapshots/{snapshot}"
LIMITS = "/api/v1/admin/users/{user}/rate-limits"
ENDPOINTS = [
    Endpoint("POST", "/api/v1/rooms", "user", 201, body={"name": "Another room"}),
    Endpoint("GET", ROOM, "viewer", 200, "room.read"),
    Endpoint(
        "DELETE",
        ROOM,
        "owner",
        204,
        "room.delete",
        ("room.delete", "deleted"),
        prepare=_fresh_room,
    ),
    Endpoint(
        "PUT",
        ROOM + "/members/{user}",
        "owner",
        201,
        "member.put",
        ("member.role", "added"),
        body={"role": "viewer", "display_name": "New Member"},
    ),
    Endpoint(
        "DELETE",
        ROOM + "/members/{user}",
        "owner",
        204,
        "member.remove",
        ("member.remove", "removed"),
        prepare=_fresh_member,
    ),
    Endpoint("POST", ROOM + "/messages", "editor", 201, "message.post", body={"body": "hi"}),
    Endpoint("GET", ROOM + "/messages", "viewer", 200, "message.list"),
    Endpoint(
        "POST",
        ROOM + "/snapshots",
        "editor",
        202,
        "snapshot.create",
        ("snapshot.create", "accepted"),
        body={},
    ),
    Endpoint("GET", ROOM + "/snapshots", "viewer", 200, "snapshot.list"),
    Endpoint("GET", SNAP, "viewer", 200, "snapshot.read"),
    Endpoint(
        "GET",
        SNAP + "/download",
        "viewer",
        200,
        "snapshot.download",
        ("snapshot.download", "served"),
    ),
    Endpoint(
        "DELETE",
        SNAP,
        "owner",
        204,
        "snapshot.delete",
        ("snapshot.delete", "deleted"),
        prepare=_fresh_snapshot,
    ),
    Endpoint("GET", "/api/v1/tasks/{task}", "viewer", 200, "task.read"),
    Endpoint("GET", "/api/v1/snapshots/metrics/summary", "admin", 200, "admin.summary"),
    Endpoint("GET", "/api/v1/audit", "admin", 200, "admin.audit"),
    Endpoint("GET", LIMITS, "admin", 200, "admin.rate_limits.read"),
    Endpoint(
        "PUT",
        LIMITS,
        "admin",
        200,
        "admin.rate_limits.set",
        ("admin.rate_limits.set", "changed"),
        body={"snapshots": "600/minute"},
    ),
    Endpoint("GET", "/healthz", "anyone", 200),
    Endpoint("GET", "/readyz", "anyone", 200),
]
# Where an administrator who is not a member succeeds, an admin.room_access entry says so
# (services/access.require_role). Snapshot creation checks access in its freeze query instead;
# its entry (snapshot.create, actor the admin) already names who acted.
ADMIN_ACCESS = {
    "room.read", "room.delete", "member.put", "member.remove", "message.post", "message.list",
    "snapshot.list", "snapshot.read", "snapshot.download", "snapshot.delete", "task.read",
}  # fmt: skip
ENDPOINTS = [replace(e, admin_access=e.action in ADMIN_ACCESS) for e in ENDPOINTS]


def expected_status(endpoint: Endpoint, role: str) -> int:
    if endpoint.who == "anyone":
        return endpoint.ok
    if role == "anonymous":
        return 401
    if role == "admin" or endpoint.who == "user":
        return endpoint.ok
    if endpoint.who == "admin":
        return 403
    if role == "stranger":
        return 404
    return endpoint.ok if RANK[role] >= RANK[endpoint.who] else 403


CASES = [
    pytest.param(e, role, id=f"{e.method} {e.path} as {role}") for e in ENDPOINTS for role in ROLES
]


@pytest.mark.parametrize(("endpoint", "role"), CASES)
async def test_endpoint_answers_and_audits_each_role(env: Env, endpoint: Endpoint, role: str):
    ids = await endpoint.prepare(env)
    rid = request_id()
    headers = {"X-Request-ID": rid}
    if role != "anonymous":
        headers.update(env.api.auth(USERS[role], admin=role == "admin"))
    r = await env.api.client.request(
        endpoint.method,
        endpoint.path.format(**ids),
        json=endpoint.body,
        headers=headers,
    )
    status = expected_status(endpoint, role)
    rows = await audit_rows(env.database_url, rid)
    if status >= 400:
        body = assert_problem(r, status)
        assert body["code"] == {401: "unauthorized", 403: "forbidden", 404: "not_found"}[status]
        if status == 401:
            assert r.headers["www-authenticate"].startswith("Bearer")
        expected = {401: "denied_unauthenticated", 403: "denied_forbidden"}.get(
            status, "denied_not_found"
        )
        if endpoint.action is None:
            assert rows == []
        else:
            assert [(a["action"], a["outcome"]) for a in rows] == [(endpoint.action, expected)]
            assert rows[0]["actor"] == (None if role == "anonymous" else USERS[role])
            assert rows[0]["client_addr"] == "127.0.0.1"
    else:
        assert r.status_code == status, (r.status_code, r.text[:300])
        expected_rows = [("admin.room_access", "granted")] if role == "admin" else []
        expected_rows = expected_rows if endpoint.admin_access else []
        expected_rows += [endpoint.audited_ok] if endpoint.audited_ok else []
        assert [(a["action"], a["outcome"]) for a in rows] == expected_rows
        assert all(a["actor"] == USERS[role] and a["client_addr"] == "127.0.0.1" for a in rows)
        if expected_rows and expected_rows[0][0] == "admin.room_access":
            assert rows[0]["room_id"] is not None
    if "/download" in endpoint.path and status == 200:
        assert r.content == FAKE_PDF and r.headers["content-type"] == "application/pdf"


async def test_the_matrix_covers_every_documented_operation(env: Env):
    documented = {
        (method.upper(), path)
        for path, operations in env.api.app.openapi()["paths"].items()
        for method in operations
    }
    covered = {
        (e.method, e.path.replace("{room}", "{room_id}").replace("{snapshot}", "{snapshot_id}")
         .replace("{task}", "{task_id}").replace("{user}", "{user_id}"))
        for e in ENDPOINTS
    }  # fmt: skip
    assert documented == covered
    assert len(CASES) == len(ENDPOINTS) * len(ROLES) == 114


async def _get(env: Env, path: str, user: str) -> httpx.Response:
    return await env.api.client.get(path, headers=env.api.auth(user))


async def test_ids_of_another_room_are_never_served(env: Env):
    """Snapshot and task ids of Ivan's room get exactly the answer of ids that don't exist."""
    w = env.world
    missing = str(uuid.uuid4())
    for user in (OWNER, EDITOR, VIEWER, STRANGER):
        for template in (
            ROOM,
            ROOM + "/messages",
            ROOM + "/snapshots",
            SNAP,
            SNAP + "/download",
            "/api/v1/tasks/{task}",
        ):
            foreign = template.format(
                room=w.other_room, snapshot=w.other_snapshot, task=w.other_task
            )
            unknown = template.format(room=missing, snapshot=missing, task=missing)
            a, b = await _get(env, foreign, user), await _get(env, unknown, user)
            pa, pb = assert_problem(a, 404, "not_found"), assert_problem(b, 404, "not_found")
            strip = ("instance", "request_id")
            assert {k: v for k, v in pa.items() if k not in strip} == {
                k: v for k, v in pb.items() if k not in strip
            }, foreign
            assert set(a.headers) == set(b.headers)
        for method, template, body in (
            ("POST", ROOM + "/messages", {"body": "sneaky"}),
            ("POST", ROOM + "/snapshots", {}),
            ("PUT", ROOM + "/members/" + user, {"role": "owner"}),
            ("DELETE", SNAP, None),
        ):
            path = template.format(room=w.other_room, snapshot=w.other_snapshot)
            r = await env.api.client.request(method, path, json=body, headers=env.api.auth(user))
            assert_problem(r, 404, "not_found")
    # Ivan still has his room exactly as it was.
    page = (await _get(env, f"/api/v1/rooms/{w.other_room}/messages", "ivan")).json()
    assert [m["body"] for m in page["items"]] == ["private"]
    snaps = (await _get(env, f"/api/v1/rooms/{w.other_room}/snapshots", "ivan")).json()
    assert [s["id"] for s in snaps["items"]] == [w.other_snapshot]


async def test_last_owner_cannot_demote_themself_but_can_after_adding_an_owner(env: Env):
    room = await env.api.room("oscar", "Solo room")
    path = f"/api/v1/rooms/{room}/members/oscar"
    for role in ("editor", "viewer"):
        r = await env.api.client.put(path, json={"role": role}, headers=env.api.auth("oscar"))
        assert_problem(r, 409, "last_owner")
    # An administrator cannot leave the room without an owner either.
    r = await env.api.client.put(path, json={"role": "viewer"}, headers=env.api.auth(ADMIN, True))
    assert_problem(r, 409, "last_owner")
    await env.api.add_member(room, "olga", "owner", owner="oscar")
    r = await env.api.client.put(path, json={"role": "viewer"}, headers=env.api.auth("oscar"))
    assert r.status_code == 200 and r.json()["role"] == "viewer"
    # Now a viewer: member management is refused, and the remaining owner is still the last one.
    r = await env.api.client.put(
        f"/api/v1/rooms/{room}/members/olga", json={"role": "viewer"}, headers=env.api.auth("oscar")
    )
    assert_problem(r, 403, "forbidden")
    r = await env.api.client.put(
        f"/api/v1/rooms/{room}/members/olga", json={"role": "editor"}, headers=env.api.auth("olga")
    )
    assert_problem(r, 409, "last_owner")


async def test_a_deleted_snapshot_is_gone_for_everyone(env: Env):
    created = await env.api.snapshot(env.world.room, user=EDITOR)
    snap, task = created.json()["snapshot_id"], created.json()["task_id"]
    r = await env.api.client.delete(f"/api/v1/snapshots/{snap}", headers=env.api.auth(OWNER))
    assert r.status_code == 204
    for user in (OWNER, VIEWER):
        for path in (f"/api/v1/snapshots/{snap}", f"/api/v1/snapshots/{snap}/download"):
            assert_problem(await _get(env, path, user), 404, "not_found")
        assert_problem(await _get(env, f"/api/v1/tasks/{task}", user), 404, "not_found")
    r = await env.api.client.delete(f"/api/v1/snapshots/{snap}", headers=env.api.auth(OWNER))
    assert_problem(r, 404, "not_found")


async def test_member_put_answers_201_when_it_adds_and_200_when_it_changes(env: Env):
    room = await env.api.room(OWNER, "Members")
    path = f"/api/v1/rooms/{room}/members/newbie"
    first = await env.api.client.put(path, json={"role": "viewer"}, headers=env.api.auth(OWNER))
    assert first.status_code == 201 and first.json()["display_name"] == "newbie"
    named = {"role": "viewer", "display_name": "Newbie N."}
    again = await env.api.client.put(path, json=named, headers=env.api.auth(OWNER))
    assert again.status_code == 200 and again.json()["display_name"] == "Newbie N."
    kept = await env.api.client.put(path, json={"role": "editor"}, headers=env.api.auth(OWNER))
    assert kept.status_code == 200
    assert (kept.json()["display_name"], kept.json()["role"]) == ("Newbie N.", "editor")
