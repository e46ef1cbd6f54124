"""Rooms, members, messages and authentication against the real PostgreSQL."""

from __future__ import annotations

import time

import jwt
import pytest
from support.api import SECRET, running_api, settings_for


@pytest.fixture
async def api(database_url, queue_prefix, tmp_path):
    async with running_api(settings_for(database_url, queue_prefix, tmp_path)) as api:
        yield api


async def test_room_lifecycle_members_and_messages(api):
    room = await api.room("olivia", "Design review")
    r = await api.client.get(f"/api/v1/rooms/{room}", headers=api.auth("olivia"))
    assert r.json()["member_count"] == 1 and r.json()["your_role"] == "owner"
    await api.add_member(room, "eddie", "editor")
    await api.add_member(room, "vera", "viewer")
    r = await api.client.get(f"/api/v1/rooms/{room}", headers=api.auth("vera"))
    assert r.status_code == 200 and r.json()["member_count"] == 3

    single = await api.client.post(
        f"/api/v1/rooms/{room}/messages",
        json={"body": "first\nline two", "kind": "decision"},
        headers=api.auth("eddie"),
    )
    assert single.status_code == 201
    assert single.json()["author_name"] == "Eddie" and single.json()["kind"] == "decision"
    await api.post_messages(room, [f"m{i}" for i in range(5)], user="eddie")

    bodies, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (
            await api.client.get(
                f"/api/v1/rooms/{room}/messages", params=params, headers=api.auth("vera")
            )
        ).json()
        bodies += [m["body"] for m in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert bodies == ["first\nline two", "m0", "m1", "m2", "m3", "m4"]


async def test_roles_are_enforced_and_strangers_see_nothing(api):
    room = await api.room("olivia")
    await api.add_member(room, "vera", "viewer")
    r = await api.client.post(
        f"/api/v1/rooms/{room}/messages", json={"body": "hi"}, headers=api.auth("vera")
    )
    assert r.status_code == 403 and r.json()["code"] == "forbidden"
    r = await api.client.put(
        f"/api/v1/rooms/{room}/members/x", json={"role": "viewer"}, headers=api.auth("vera")
    )
    assert r.status_code == 403
    for path in (f"/api/v1/rooms/{room}", f"/api/v1/rooms/{room}/messages"):
        stranger = await api.client.get(path, headers=api.auth("mallory"))
        missing = await api.client.get(
            path.replace(room, "00000000-0000-4000-8000-000000000000"), headers=api.auth("mallory")
        )
        assert stranger.status_code == missing.status_code == 404
        assert stranger.json()["detail"] == missing.json()["detail"]


async def test_last_owner_cannot_step_down(api):
    room = await api.room("olivia")
    r = await api.client.put(
        f"/api/v1/rooms/{room}/members/olivia", json={"role": "editor"}, headers=api.auth("olivia")
    )
    assert r.status_code == 409 and r.json()["code"] == "last_owner"
    await api.add_member(room, "otto", "owner")
    r = await api.client.put(
        f"/api/v1/rooms/{room}/members/olivia", json={"role": "editor"}, headers=api.auth("olivia")
    )
    assert r.status_code == 200 and r.json()["role"] == "editor"


@pytest.mark.parametrize(
    "token",
    [
        None,
        "not-a-jwt",
        jwt.encode({"sub": "olivia", "exp": int(time.time()) + 60}, "wrong-secret-0123456789"),
        jwt.encode({"sub": "olivia", "exp": int(time.time()) - 3600}, SECRET),
        jwt.encode({"sub": "olivia"}, SECRET),
        jwt.encode({"sub": "olivia", "exp": int(time.time()) + 60}, SECRET, algorithm="HS512"),
        jwt.encode({"sub": "olivia", "exp": int(time.time()) + 60}, None, algorithm="none"),
    ],
)
async def test_bad_tokens_get_401_problems(api, token):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    r = await api.client.post("/api/v1/rooms", json={"name": "x"}, headers=headers)
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert r.json()["code"] == "unauthorized"


async def test_bad_bodies_are_clear_problems_and_write_nothing(api):
    room = await api.room("olivia")
    h = {**api.auth("olivia"), "content-type": "application/json"}
    cases = [
        (b"{nope", 400, "malformed_json"),
        (b'{"body": "x", "extra": 1}', 422, "validation_error"),
        (b'{"body": ""}', 422, "validation_error"),
        (b'{"body": 5}', 422, "validation_error"),
        (b'{"messages": []}', 422, "validation_error"),
        (b'{"body": "' + b"x" * 16385 + b'"}', 422, "validation_error"),
    ]
    for raw, status, code in cases:
        r = await api.client.post(f"/api/v1/rooms/{room}/messages", content=raw, headers=h)
        assert (r.status_code, r.json()["code"]) == (status, code), raw[:40]
    huge = b'{"body": "' + b"x" * (11 * 2**20) + b'"}'
    r = await api.client.post(f"/api/v1/rooms/{room}/messages", content=huge, headers=h)
    assert r.status_code == 413 and r.json()["code"] == "body_too_large"

    async def chunks():
        yield b'{"body": "'
        for _ in range(12):
            yield b"x" * 2**20
        yield b'"}'

    r = await api.client.post(f"/api/v1/rooms/{room}/messages", content=chunks(), headers=h)
    assert r.status_code == 413
    page = (await api.client.get(f"/api/v1/rooms/{room}/messages", headers=h)).json()
    assert page["items"] == []
    r = await api.client.get("/api/v1/rooms/not-a-uuid", headers=h)
    assert r.status_code == 422 and r.json()["code"] == "validation_error"
    assert "x-request-id" in r.headers


async def test_an_unknown_query_parameter_is_a_clear_422(api):
    """A misspelt filter is refused, not ignored: ``?limt=2`` would otherwise list a full page
    (and the schema fuzzer found ``/webhooks/deliveries`` taking any query)."""
    room = await api.room("olivia", "Typos")
    await api.post_messages(room, ["a", "b", "c"], user="olivia")
    for path, query in (
        (f"/api/v1/rooms/{room}/messages", {"limt": "2"}),
        ("/api/v1/webhooks/deliveries", {"snapshotid": "x"}),
    ):
        r = await api.client.get(path, params=query, headers=api.auth("olivia"))
        assert r.status_code == 422, (path, r.text)
        problem = r.json()
        assert problem["code"] == "validation_error", problem
        assert next(iter(query)) in problem["detail"], problem
    good = await api.client.get(
        f"/api/v1/rooms/{room}/messages", params={"limit": 2}, headers=api.auth("olivia")
    )
    assert good.status_code == 200 and len(good.json()["items"]) == 2
