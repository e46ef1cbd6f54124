"""Per-user rate limits against the real PostgreSQL: 429 with the draft's headers, nothing
written on refusal, Retry-After honoured (injected clock), users independent, admin overrides
applied at once across API instances, and exactly the limit admitted under concurrency."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import httpx
import pytest
from snapshot_api.rate_policy import DEFAULT_RATE_LIMITS
from snapshot_api.settings import Settings
from support.api import Api, running_api, settings_for
from support.security import assert_problem

pytestmark = pytest.mark.asyncio(loop_scope="module")
README = Path(__file__).resolve().parents[2] / "README.md"
NO_BROKER = "amqp://guest:guest@127.0.0.1:9/"


class Clock:
    """The limiter's clock, moved by the test instead of waiting."""

    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


@pytest.fixture(scope="module")
def make_settings(database_url, queue_prefix, tmp_path_factory):
    def make(**overrides: object) -> Settings:
        return settings_for(
            database_url, queue_prefix, tmp_path_factory.mktemp("store"), **overrides
        )

    return make


@asynccontextmanager
async def api_with(settings: Settings, clock: Clock | None = None) -> AsyncIterator[Api]:
    async with running_api(settings, wait_for_broker=False) as api:
        api.app.state.rate_limiter.clock = clock
        yield api


async def count(database_url: str, sql: str, *args: object) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        return int(await conn.fetchval(sql, *args))
    finally:
        await conn.close()


async def written_for(database_url: str, room: str) -> dict[str, int]:
    """Everything a write to the room could leave behind."""
    conn = await asyncpg.connect(database_url)
    try:
        return {
            table: int(await conn.fetchval(sql, room))
            for table, sql in {
                "snapshots": "SELECT count(*) FROM snapshots WHERE room_id = $1::uuid",
                "tasks": "SELECT count(*) FROM tasks t JOIN snapshots s ON s.id = t.snapshot_id"
                " WHERE s.room_id = $1::uuid",
                "outbox": "SELECT count(*) FROM outbox o JOIN tasks t ON t.id = o.task_id"
                " JOIN snapshots s ON s.id = t.snapshot_id WHERE s.room_id = $1::uuid",
                "messages": "SELECT count(*) FROM messages WHERE room_id = $1::uuid",
                "members": "SELECT count(*) FROM members WHERE room_id = $1::uuid",
                "audit": "SELECT count(*) FROM audit WHERE room_id = $1::uuid",
            }.items()
        }
    finally:
        await conn.close()


def headers_of(r: httpx.Response) -> tuple[str, str]:
    return r.headers["ratelimit-policy"], r.headers["ratelimit"]


async def test_the_defaults_are_the_documented_ones_and_refuse_the_31st_room(make_settings):
    settings = make_settings(rate_limits=Settings.model_fields["rate_limits"].default)
    assert settings.rate_limits == DEFAULT_RATE_LIMITS
    assert f"`{DEFAULT_RATE_LIMITS}`" in README.read_text(encoding="utf-8")
    async with api_with(settings, Clock()) as api:
        for n in range(30):
            r = await api.client.post("/api/v1/rooms", json={"name": "r"}, headers=api.auth("dee"))
            assert r.status_code == 201, r.text
            assert headers_of(r) == ('"rooms";q=30;w=60', f'"rooms";r={29 - n};t={2 * (n + 1)}')
        r = await api.client.post("/api/v1/rooms", json={"name": "r"}, headers=api.auth("dee"))
        assert_problem(r, 429, "rate_limited")
        assert r.headers["retry-after"] == "2"
    assert await count(settings.database_dsn, "SELECT count(*) FROM rooms WHERE name = 'r'") == 30


async def test_a_refused_snapshot_writes_nothing_and_retry_after_is_honoured(make_settings):
    clock = Clock()
    # No broker: the outbox rows stay, so that "nothing written" covers them too.
    settings = make_settings(rate_limits="snapshots=3/minute", amqp_url=NO_BROKER)
    async with api_with(settings, clock) as api:
        room = await api.room("sam")
        await api.post_messages(room, ["one", "two"], user="sam")
        for left in (2, 1, 0):
            r = await api.snapshot(room, user="sam")
            assert r.status_code == 202, r.text
            expected = f'"snapshots";r={left};t={60 - 20 * left}'
            assert headers_of(r) == ('"snapshots";q=3;w=60', expected)
        before = await written_for(settings.database_dsn, room)
        r = await api.snapshot(room, user="sam", body={"options": {"title": "Over"}})
        body = assert_problem(r, 429, "rate_limited")
        assert body["retry_after"] == 20 and body["limit"] == "3/minute"
        assert r.headers["retry-after"] == "20"
        assert headers_of(r) == ('"snapshots";q=3;w=60', '"snapshots";r=0;t=60')
        assert await written_for(settings.database_dsn, room) == before
        clock.advance(19)
        r = await api.snapshot(room, user="sam")
        assert_problem(r, 429, "rate_limited")
        assert r.headers["retry-after"] == "1"
        clock.advance(1)
        r = await api.snapshot(room, user="sam", body={"options": {"title": "Now"}})
        assert r.status_code == 202, r.text
        assert r.headers["ratelimit"] == '"snapshots";r=0;t=60'
        after = await written_for(settings.database_dsn, room)
        assert after["snapshots"] == before["snapshots"] + 1


async def test_a_batch_of_n_messages_costs_n(make_settings):
    clock = Clock()
    settings = make_settings(rate_limits="messages=10/minute")
    async with api_with(settings, clock) as api:
        room = await api.room("mia")
        await api.post_messages(room, [f"m{i}" for i in range(7)], user="mia")
        path = f"/api/v1/rooms/{room}/messages"
        r = await api.client.post(
            path, json={"messages": [{"body": "x"}] * 4}, headers=api.auth("mia")
        )
        assert_problem(r, 429, "rate_limited")
        assert r.headers["ratelimit"] == '"messages";r=3;t=42'
        assert r.headers["retry-after"] == "6"  # one more message's worth (60 s / 10)
        r = await api.client.post(
            path, json={"messages": [{"body": "y"}] * 11}, headers=api.auth("mia")
        )
        body = assert_problem(r, 422, "batch_over_rate_limit")
        assert body["cost"] == 11 and body["limit"] == "10/minute"
        assert (await written_for(settings.database_dsn, room))["messages"] == 7
        r = await api.client.post(path, json={"body": "single"}, headers=api.auth("mia"))
        assert r.status_code == 201 and r.headers["ratelimit"] == '"messages";r=2;t=48'
        r = await api.client.post(
            path, json={"messages": [{"body": "z"}] * 2}, headers=api.auth("mia")
        )
        assert r.status_code == 201 and r.headers["ratelimit"] == '"messages";r=0;t=60'
        assert (await written_for(settings.database_dsn, room))["messages"] == 10


async def test_one_users_exhaustion_leaves_others_alone(make_settings):
    settings = make_settings(rate_limits="rooms=2/hour,members=1/hour")
    async with api_with(settings, Clock()) as api:
        room = await api.room("ann")
        await api.room("ann")
        r = await api.client.post("/api/v1/rooms", json={"name": "3"}, headers=api.auth("ann"))
        assert_problem(r, 429, "rate_limited")
        assert r.headers["ratelimit-policy"] == '"rooms";q=2;w=3600'
        r = await api.client.post("/api/v1/rooms", json={"name": "b"}, headers=api.auth("bob"))
        assert r.status_code == 201 and r.headers["ratelimit"] == '"rooms";r=1;t=1800'
        # Ann's member quota is her own too, and independent of her room quota.
        await api.add_member(room, "carl", "owner", owner="ann")
        r = await api.client.put(
            f"/api/v1/rooms/{room}/members/dora", json={"role": "viewer"}, headers=api.auth("ann")
        )
        assert_problem(r, 429, "rate_limited")
        r = await api.client.put(
            f"/api/v1/rooms/{room}/members/dora", json={"role": "viewer"}, headers=api.auth("carl")
        )
        assert r.status_code == 201
        assert (await written_for(settings.database_dsn, room))["members"] == 3


async def test_denied_malformed_and_replayed_requests_cost_nothing(make_settings):
    settings = make_settings(
        rate_limits="rooms=1/hour,messages=1/hour,members=1/hour,snapshots=2/hour"
    )
    async with api_with(settings, Clock()) as api:
        client, auth = api.client, api.auth("eve")
        assert_problem(await client.post("/api/v1/rooms", json={"name": "x"}), 401)
        for bad in ({}, {"name": ""}, {"name": "x", "extra": 1}):
            assert_problem(await client.post("/api/v1/rooms", json=bad, headers=auth), 422)
        json_type = {"Content-Type": "application/json"}
        r = await client.post("/api/v1/rooms", content=b"{", headers={**auth, **json_type})
        assert_problem(r, 400, "malformed_json")
        room = await api.room("eve")  # the one room of the hour: nothing above spent it
        other = await api.room("olga")
        path = f"/api/v1/rooms/{other}/messages"
        for _ in range(3):  # not a member: 404, and the quota stays
            assert_problem(await client.post(path, json={"body": "hi"}, headers=auth), 404)
        await api.add_member(other, "eve", "viewer", owner="olga")
        assert_problem(await client.post(path, json={"body": "hi"}, headers=auth), 403)
        r = await client.post(f"/api/v1/rooms/{room}/messages", json={"body": "hi"}, headers=auth)
        assert r.status_code == 201 and r.headers["ratelimit"] == '"messages";r=0;t=3600'
        # Spent, and still the access check answers first: no 429 where a 403 or 404 is due.
        assert_problem(await client.post(path, json={"body": "hi"}, headers=auth), 403)
        r = await client.post(f"/api/v1/rooms/{room}/messages", json={"body": "2"}, headers=auth)
        assert_problem(r, 429, "rate_limited")
        # A request refused after its check (409 last_owner) gives its unit back.
        me = f"/api/v1/rooms/{room}/members/eve"
        for _ in range(2):
            r = await client.put(me, json={"role": "viewer"}, headers=auth)
            assert_problem(r, 409, "last_owner")
        r = await client.put(
            f"/api/v1/rooms/{room}/members/finn", json={"role": "viewer"}, headers=auth
        )
        assert r.status_code == 201 and r.headers["ratelimit"] == '"members";r=0;t=3600'
        key = {"Idempotency-Key": "eve-1"}
        first = await api.snapshot(room, user="eve", headers=key)
        assert first.status_code == 202
        assert first.headers["ratelimit"].startswith('"snapshots";r=1;')
        for _ in range(3):
            again = await api.snapshot(room, user="eve", headers=key)
            assert again.status_code == 202
            assert again.json()["snapshot_id"] == first.json()["snapshot_id"]
        r = await api.snapshot(room, user="eve")
        assert r.status_code == 202 and r.headers["ratelimit"].startswith('"snapshots";r=0;')


async def test_an_admin_raises_one_users_quota_at_once_in_every_instance(make_settings):
    settings = make_settings(rate_limits="rooms=1/hour")
    path = "/api/v1/admin/users/fay/rate-limits"
    async with api_with(settings) as one, api_with(settings) as two:
        await one.room("fay")
        r = await two.client.post("/api/v1/rooms", json={"name": "2"}, headers=two.auth("fay"))
        assert_problem(r, 429, "rate_limited")
        admin = one.auth("root", admin=True)
        r = await one.client.put(path, json={"rooms": "3/hour"}, headers=admin)
        assert r.status_code == 200, r.text
        view = r.json()
        assert view["overrides"] == {"rooms": "3/hour"} and view["updated_by"] == "root"
        assert view["effective"] == {
            "rooms": "3/hour", "messages": "600/minute", "members": "120/minute",
            "snapshots": "60/minute",
        }  # fmt: skip
        # Served by the other instance, with no restart: two more rooms, then 429 again.
        for left in (1, 0):
            r = await two.client.post("/api/v1/rooms", json={"name": "n"}, headers=two.auth("fay"))
            assert r.status_code == 201, r.text
            assert headers_of(r)[0] == '"rooms";q=3;w=3600'
            assert headers_of(r)[1].startswith(f'"rooms";r={left};')
        r = await two.client.post("/api/v1/rooms", json={"name": "4"}, headers=two.auth("fay"))
        assert_problem(r, 429, "rate_limited")
        # Bad values are refused and change nothing.
        for bad in ({"rooms": "3/fortnight"}, {"rooms": "0/hour"}, {"pages": "1/hour"},
                    {"rooms": "1/hour, messages=2/hour"}, {"rooms": 3}):  # fmt: skip
            assert_problem(await one.client.put(path, json=bad, headers=admin), 422)
        assert (await two.client.get(path, headers=admin)).json() == view
        # 'off' exempts the user; an empty body goes back to the defaults.
        r = await one.client.put(path, json={"rooms": "off"}, headers=admin)
        assert r.json()["effective"]["rooms"] == "off"
        r = await two.client.post("/api/v1/rooms", json={"name": "5"}, headers=two.auth("fay"))
        assert r.status_code == 201 and "ratelimit" not in r.headers
        r = await one.client.put(path, json={}, headers=admin)
        assert r.json()["overrides"] == {} and r.json()["effective"]["rooms"] == "1/hour"
        r = await two.client.post("/api/v1/rooms", json={"name": "6"}, headers=two.auth("fay"))
        assert_problem(r, 429, "rate_limited")
        # Non-admins may neither read nor change limits, their own included.
        for method, body in (("GET", None), ("PUT", {"rooms": "1000/second"})):
            r = await one.client.request(method, path, json=body, headers=one.auth("fay"))
            assert_problem(r, 403, "forbidden")
    conn = await asyncpg.connect(settings.database_dsn)
    try:
        rows = await conn.fetch(
            "SELECT actor, outcome, subject, detail FROM audit"
            " WHERE action = 'admin.rate_limits.set' AND subject = 'fay' ORDER BY id"
        )
    finally:
        await conn.close()
    assert [(r["actor"], r["outcome"], r["detail"]) for r in rows] == [
        ("root", "changed", '{"to": {"rooms": "3/hour"}, "from": {}}'),
        ("root", "changed", '{"to": {"rooms": "off"}, "from": {"rooms": "3/hour"}}'),
        ("root", "changed", '{"to": {}, "from": {"rooms": "off"}}'),
    ]


async def test_concurrent_requests_on_two_instances_admit_exactly_the_limit(make_settings):
    settings = make_settings(rate_limits="rooms=10/hour,snapshots=7/hour")
    async with api_with(settings) as one, api_with(settings) as two:

        async def create(api: Api, n: int) -> int:
            r = await api.client.post(
                "/api/v1/rooms", json={"name": f"race {n}"}, headers=api.auth("gil")
            )
            assert r.status_code in (201, 429), r.text
            return r.status_code

        codes = await asyncio.gather(*(create((one, two)[n % 2], n) for n in range(40)))
        assert sorted(codes) == [201] * 10 + [429] * 30
        sql = "SELECT count(*) FROM rooms WHERE name LIKE 'race %'"
        assert await count(settings.database_dsn, sql) == 10
        room = await one.room("hal")
        snaps = await asyncio.gather(*(api.snapshot(room, user="hal") for api in (one, two) * 12))
        assert sorted(r.status_code for r in snaps) == [202] * 7 + [429] * 17
        assert (await written_for(settings.database_dsn, room))["snapshots"] == 7


async def test_off_turns_the_limiter_off(make_settings):
    settings = make_settings(rate_limits="off")
    async with api_with(settings) as api:
        assert not api.app.state.rate_limiter.enabled
        r = await api.client.post("/api/v1/rooms", json={"name": "o"}, headers=api.auth("ida"))
        assert r.status_code == 201 and "ratelimit" not in r.headers
        sql = "SELECT count(*) FROM rate_limits WHERE user_id = 'ida'"
        assert await count(settings.database_dsn, sql) == 0
        view = await api.client.get(
            "/api/v1/admin/users/ida/rate-limits", headers=api.auth("root", admin=True)
        )
        assert set(view.json()["effective"].values()) == {"off"}


async def test_an_unlimited_action_still_limits_the_users_an_admin_gave_a_limit(make_settings):
    settings = make_settings(rate_limits="rooms=off")
    async with api_with(settings, Clock()) as api:
        admin = api.auth("root", admin=True)
        r = await api.client.put(
            "/api/v1/admin/users/jay/rate-limits", json={"rooms": "1/hour"}, headers=admin
        )
        assert r.json()["effective"]["rooms"] == "1/hour"
        for user in ("kim", "kim", "kim", "jay"):
            r = await api.client.post("/api/v1/rooms", json={"name": "u"}, headers=api.auth(user))
            assert r.status_code == 201
            assert ("ratelimit" in r.headers) == (user == "jay")
        r = await api.client.post("/api/v1/rooms", json={"name": "u"}, headers=api.auth("jay"))
        assert_problem(r, 429, "rate_limited")
