"""Hostile requests: each is a 4xx problem with a stable code, leaks nothing, and writes nothing."""

from __future__ import annotations

import base64
import json

import pytest
import pytest_asyncio
from support.api import running_api, settings_for
from support.security import (
    EDITOR,
    OWNER,
    VIEWER,
    assert_problem,
    build_world,
    table_counts,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")
BODY_LIMIT = 64 * 1024
JSON = {"content-type": "application/json"}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def env(database_url, queue_prefix, tmp_path_factory):
    settings = settings_for(
        database_url, queue_prefix, tmp_path_factory.mktemp("store"), max_body_bytes=BODY_LIMIT
    )
    async with running_api(settings) as api:
        yield api, await build_world(api)


def cursor(*values) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(values)).encode()).decode().rstrip("=")


def raw_bodies(room: str) -> list[tuple[str, str, bytes, int, str]]:
    """(method, path, raw body, status, code) for every route that takes a body."""
    rooms, member = "/api/v1/rooms", f"/api/v1/rooms/{room}/members/newcomer"
    messages, snaps = f"/api/v1/rooms/{room}/messages", f"/api/v1/rooms/{room}/snapshots"
    cases = []
    for method, path in (("POST", rooms), ("PUT", member), ("POST", messages), ("POST", snaps)):
        cases += [
            (method, path, b"{nope", 400, "malformed_json"),
            (method, path, b'{"a": 1,}', 400, "malformed_json"),
            (method, path, b"\xff\xfe{}", 400, "malformed_json"),
            (method, path, b"[1, 2]", 422, "validation_error"),
            (method, path, b'"text"', 422, "validation_error"),
        ]
    return cases + [
        ("POST", rooms, b'{"name": 5}', 422, "validation_error"),
        ("POST", rooms, b'{"name": "   "}', 422, "validation_error"),
        ("POST", rooms, b'{"name": "x", "owner": "mallory"}', 422, "validation_error"),
        ("POST", rooms, b'{"name": "nul \\u0000"}', 422, "validation_error"),
        ("POST", rooms, b'{"name": "lone \\ud800 surrogate"}', 422, "validation_error"),
        ("POST", rooms, b'{"name": "line\\nbreak"}', 422, "validation_error"),
        ("POST", rooms, json.dumps({"name": "n" * 201}).encode(), 422, "validation_error"),
        ("POST", rooms, b"", 422, "validation_error"),
        ("PUT", member, b'{"role": "admin"}', 422, "validation_error"),
        ("PUT", member, b'{"role": "viewer", "is_admin": true}', 422, "validation_error"),
        ("PUT", member, b'{"role": "viewer", "display_name": "\\u0000"}', 422, "validation_error"),
        ("PUT", member, b'{"role": ["owner"]}', 422, "validation_error"),
        ("POST", messages, b'{"body": "x", "author_id": "olivia"}', 422, "validation_error"),
        ("POST", messages, b'{"body": "x", "kind": "alert"}', 422, "validation_error"),
        ("POST", messages, b'{"body": "nul \\u0000"}', 422, "validation_error"),
        ("POST", messages, b'{"body": "\\udfff"}', 422, "validation_error"),
        ("POST", messages, b'{"body": null}', 422, "validation_error"),
        ("POST", messages, b'{"messages": "x"}', 422, "validation_error"),
        (
            "POST",
            messages,
            b'{"messages": [{"body": "ok"}, {"body": ""}]}',
            422,
            "validation_error",
        ),
        (
            "POST",
            messages,
            json.dumps({"messages": [{"body": "x"}] * 501}).encode(),
            422,
            "validation_error",
        ),
        ("POST", snaps, b'{"scope": {"sections": ["secrets"]}}', 422, "validation_error"),
    ]


async def test_malformed_wrong_and_unknown_bodies_write_nothing(env, database_url):
    api, world = env
    before = await table_counts(database_url)
    for method, path, raw, status, code in raw_bodies(world.room):
        r = await api.client.request(method, path, content=raw, headers={**api.auth(OWNER), **JSON})
        problem = assert_problem(r, status, code)
        assert problem["instance"] == path, raw[:60]
    r = await api.client.post(
        "/api/v1/rooms",
        content=b'{"name": "x"}',
        headers={**api.auth(OWNER), "content-type": "text/plain"},
    )
    assert_problem(r, 422, "validation_error")
    assert await table_counts(database_url) == before


async def test_oversized_bodies_are_refused_by_length_and_while_streaming(env, database_url):
    api, world = env
    before = await table_counts(database_url)
    path = f"/api/v1/rooms/{world.room}/messages"
    headers = {**api.auth(EDITOR), **JSON}
    big = json.dumps({"messages": [{"body": "x" * 16000}] * 5}).encode()
    assert len(big) > BODY_LIMIT
    problem = assert_problem(await api.client.post(path, content=big, headers=headers), 413)
    assert problem["code"] == "body_too_large" and problem["limit"] == BODY_LIMIT

    async def chunks():
        yield b'{"messages": ['
        for _ in range(20):
            yield b'{"body": "' + b"y" * 8000 + b'"},'
        yield b'{"body": "end"}]}'

    r = await api.client.post(path, content=chunks(), headers=headers)
    assert_problem(r, 413, "body_too_large")
    lying = {**headers, "content-length": "-1"}
    assert_problem(await api.client.post(path, content=b"{}", headers=lying), 413)
    assert await table_counts(database_url) == before
    ok = await api.client.post(
        path, json={"messages": [{"body": "m"}] * 500}, headers=api.auth(EDITOR)
    )
    assert ok.status_code == 201 and len(ok.json()) == 500  # the batch limit itself is fine


async def test_out_of_range_pagination_and_foreign_cursors(env, database_url):
    api, world = env
    before = await table_counts(database_url)
    bad_params = [
        {"limit": 0},
        {"limit": 201},
        {"limit": -1},
        {"limit": "ten"},
        {"limit": 10**30},
        {"cursor": "!!!not-base64!!!"},
        {"cursor": base64.urlsafe_b64encode(b"not json").decode()},
        {"cursor": cursor("abc")},
        {"cursor": cursor(-5)},
        {"cursor": cursor(10**30)},
        {"cursor": cursor(1.5)},
        {"cursor": cursor(True)},
        {"cursor": cursor(1, 2, 3)},
        {"cursor": cursor("9999-12-31T23:59:59-05:00", "00000000-0000-0000-0000-000000000000")},
        {"cursor": cursor("2026-01-01T00:00:00", "00000000-0000-0000-0000-000000000000")},
        {"cursor": cursor("2026-01-01T00:00:00Z", "not-a-uuid")},
        {"cursor": "A" * 513},
    ]
    paths = [
        f"/api/v1/rooms/{world.room}/messages",
        f"/api/v1/rooms/{world.room}/snapshots",
        "/api/v1/audit",
    ]
    for path in paths:
        for params in bad_params:
            user = api.auth("ada", admin=True) if "audit" in path else api.auth(VIEWER)
            r = await api.client.get(path, params=params, headers=user)
            assert_problem(r, 422, "validation_error")
    r = await api.client.get(
        "/api/v1/snapshots/metrics/summary", params={"window": 10}, headers=api.auth("ada", True)
    )
    assert_problem(r, 422, "validation_error")
    assert await table_counts(database_url) == before


async def test_invalid_ids_in_paths(env, database_url):
    api, world = env
    before = await table_counts(database_url)
    bad_ids = ["not-a-uuid", "1 OR 1=1", "..%2F..%2Fetc%2Fpasswd", "0" * 40, "%00"]
    templates = [
        ("GET", "/api/v1/rooms/{}"),
        ("GET", "/api/v1/rooms/{}/messages"),
        ("GET", "/api/v1/rooms/{}/snapshots"),
        ("GET", "/api/v1/snapshots/{}"),
        ("DELETE", "/api/v1/snapshots/{}"),
        ("GET", "/api/v1/snapshots/{}/download"),
        ("GET", "/api/v1/tasks/{}"),
    ]
    for method, template in templates:
        for bad in bad_ids:
            r = await api.client.request(method, template.format(bad), headers=api.auth(OWNER))
            assert r.status_code in (404, 422), (template, bad)
            assert_problem(r, r.status_code)
    for user_id in ("a%00b", "tab%09bed", "%7F", "x" * 129, "sp%20ace"):
        r = await api.client.put(
            f"/api/v1/rooms/{world.room}/members/{user_id}",
            json={"role": "viewer"},
            headers=api.auth(OWNER),
        )
        assert_problem(r, 422, "validation_error")
    assert await table_counts(database_url) == before


async def test_ranges_protocol_errors_and_unknown_routes_are_problems(env):
    api, world = env
    path = f"/api/v1/snapshots/{world.snapshot}/download"
    r = await api.client.get(path, headers={**api.auth(VIEWER), "Range": "bytes=999999-"})
    problem = assert_problem(r, 416, "range_not_satisfiable")
    assert r.headers["content-range"] == f"bytes */{problem['size']}"
    for header in ("bytes=abc", "pages=1-2", "bytes=5-1", "nonsense"):
        r = await api.client.get(path, headers={**api.auth(VIEWER), "Range": header})
        assert r.status_code == 200 and r.content.startswith(b"%PDF"), header
    r = await api.client.get(path, headers={**api.auth(VIEWER), "Range": "bytes=0-3"})
    assert r.status_code == 206 and r.content == b"%PDF"
    assert_problem(await api.client.delete("/api/v1/rooms", headers=api.auth(OWNER)), 405)
    assert_problem(await api.client.get("/api/v1/nothing-here"), 404, "not_found")
    r = await api.client.get("/api/v1/audit", headers={**api.auth(OWNER), "X-Request-ID": "ok-1"})
    assert_problem(r, 403, "forbidden")
    assert r.headers["x-request-id"] == "ok-1"
    r = await api.client.get("/healthz", headers={"X-Request-ID": "bad id with spaces\x7f"})
    assert r.headers["x-request-id"] != "bad id with spaces\x7f"
