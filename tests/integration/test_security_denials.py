"""Repeated denials from one client are aggregated: past a burst, a count per window instead of
one audit row each; the count is written when the window ends, or when the API stops."""

from __future__ import annotations

import json

import asyncpg
import pytest
from support.api import Api, running_api, settings_for
from support.security import OWNER, STRANGER, VIEWER, assert_problem, audit_rows, request_id
from support.waiting import until

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def _repeated_rows(database_url: str, actor: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(database_url)
    try:
        query = "SELECT * FROM audit WHERE action = 'denial.repeated' AND actor = $1 ORDER BY id"
        return list(await conn.fetch(query, actor))
    finally:
        await conn.close()


async def _deny(api: Api, room: str, user: str) -> str:
    rid = request_id()
    r = await api.client.get(
        f"/api/v1/rooms/{room}", headers={**api.auth(user), "X-Request-ID": rid}
    )
    assert_problem(r, 404, "not_found")
    return rid


async def test_a_flood_of_denials_is_a_count_not_a_row_each(
    database_url, queue_prefix, tmp_path_factory
):
    settings = settings_for(
        database_url,
        queue_prefix,
        tmp_path_factory.mktemp("store"),
        denial_audit_burst=3,
        denial_audit_window_seconds=3600,
    )
    async with running_api(settings) as api:
        room = await api.room(OWNER, "Flooded")
        rids = [await _deny(api, room, STRANGER) for _ in range(20)]
        written = [len(await audit_rows(database_url, rid)) for rid in rids]
        assert written == [1, 1, 1] + [0] * 17  # the burst, then counted
        # Another client (here: another actor) has a window of its own.
        assert len(await audit_rows(database_url, await _deny(api, room, "trudy"))) == 1
        r = await api.client.get(f"/api/v1/rooms/{room}", headers=api.auth(OWNER))
        assert r.status_code == 200  # members are served as usual
        assert await _repeated_rows(database_url, STRANGER) == []  # the window is still open
    # Stopping the API writes the open window's count.
    (row,) = await _repeated_rows(database_url, STRANGER)
    assert (row["outcome"], row["count"], row["client_addr"]) == ("aggregated", 17, "127.0.0.1")
    assert json.loads(row["detail"])["by_action"] == {"room.read:denied_not_found": 17}
    assert await _repeated_rows(database_url, "trudy") == []


async def test_the_count_is_written_when_the_window_ends(
    database_url, queue_prefix, tmp_path_factory
):
    settings = settings_for(
        database_url,
        queue_prefix,
        tmp_path_factory.mktemp("store"),
        denial_audit_burst=1,
        denial_audit_window_seconds=0.5,
    )
    async with running_api(settings) as api:
        room = await api.room(OWNER, "Windowed")
        await api.add_member(room, VIEWER, "viewer", owner=OWNER)
        sent: list[str] = []

        async def counted() -> list[asyncpg.Record]:
            rows = await _repeated_rows(database_url, "wendy")
            if not rows:  # keep denying until a window has had more than its burst and ended
                sent.append(await _deny(api, room, "wendy"))
            return rows

        rows = await until(counted, what="a window's count to be written")
        single = sum([len(await audit_rows(database_url, rid)) for rid in sent])
        # Every denial is accounted for, one way or the other, while the API still runs.
        total = single + sum(r["count"] for r in await _repeated_rows(database_url, "wendy"))
        assert rows[0]["count"] >= 1 and total <= len(sent)
    final = await _repeated_rows(database_url, "wendy")
    assert single + sum(r["count"] for r in final) == len(sent)
