"""The trail cannot be rewritten: the API's sessions run as a role that may only INSERT and
SELECT on audit, whatever DSN it is given; a dropped audit write still logs who and what."""

from __future__ import annotations

import logging
import uuid

import asyncpg
import httpx
import pytest
import pytest_asyncio
from support.security import OWNER, api_refusing_audit, assert_problem

pytestmark = pytest.mark.asyncio(loop_scope="module")
BREAKER = "audit-breaker-2"
REWRITES = [
    "UPDATE audit SET outcome = 'rewritten'",
    "DELETE FROM audit",
    "TRUNCATE audit",
    "ALTER TABLE audit DISABLE TRIGGER ALL",
    "DROP TABLE audit",
]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def api(database_url, queue_prefix, tmp_path_factory):
    store = tmp_path_factory.mktemp("store")
    async with api_refusing_audit(database_url, queue_prefix, store, BREAKER) as api:
        yield api


async def _refused_and_inserted(conn: asyncpg.Connection) -> None:
    await conn.execute("INSERT INTO audit (actor, action, outcome) VALUES ('t', 'probe', 'ok')")
    assert await conn.fetchval("SELECT count(*) FROM audit WHERE action = 'probe'") >= 1
    for statement in REWRITES:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(statement)
    assert await conn.fetchval("SELECT count(*) FROM audit WHERE outcome = 'rewritten'") == 0


async def test_the_apis_connections_can_insert_but_not_rewrite_audit(api, database_url):
    """The tests hand the API the postgres superuser's DSN; its sessions still cannot."""
    room = await api.room(OWNER)  # the API works as the role: writes rooms, members, audit
    assert (await api.client.get(f"/api/v1/rooms/{room}", headers=api.auth(OWNER))).is_success
    async with api.app.state.pool.acquire() as conn:
        assert await conn.fetchval("SELECT current_user") == "snapshot_api"
        assert not await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        await _refused_and_inserted(conn)


async def test_logging_in_as_the_role_itself_is_as_restricted(database_url):
    base, name = database_url.rsplit("/", 1)
    host = base.rsplit("@", 1)[-1]
    conn = await asyncpg.connect(f"postgresql://snapshot_api@{host}/{name}")
    try:
        await conn.execute("UPDATE rooms SET name = name WHERE false")  # its own tables: yes
        await _refused_and_inserted(conn)
    finally:
        await conn.close()


async def test_a_dropped_audit_write_still_logs_the_actor_and_ids(api, caplog):
    room = await api.room(BREAKER, "Unauditable")
    transport = httpx.ASGITransport(app=api.app, raise_app_exceptions=False)
    caplog.set_level(logging.ERROR, logger="snapshot_api.db.audit")
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
        r = await client.delete(f"/api/v1/rooms/{room}", headers=api.auth(BREAKER))
    assert_problem(r, 500, "internal_error")
    # No deletion without its entry: the room is still there.
    assert (await api.client.get(f"/api/v1/rooms/{room}", headers=api.auth(BREAKER))).is_success
    (record,) = [r for r in caplog.records if "audit entry not written" in r.getMessage()]
    message = record.getMessage()
    assert f"actor='{BREAKER}'" in message and "action=room.delete" in message
    assert f"room_id={uuid.UUID(room)}" in message and "request_id=" in message
