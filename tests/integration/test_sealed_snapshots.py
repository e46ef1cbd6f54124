"""Snapshots from sealed chunks (issue 12) against the real PostgreSQL: a POST reads the same
statements and rows whatever the room's size, its payload is byte for byte what the previous
release froze for the same content, a scoped snapshot shares the interior chunks of an
unscoped one, and a title change stores no new message bytes."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import pytest
from snapshot_api.auth import User
from snapshot_api.db import manifests
from snapshot_api.db.pool import create_pool
from snapshot_api.schemas import SnapshotRequest
from snapshot_api.services import snapshots
from snapshot_api.services.access import Actor
from snapshot_shared.hashing import payload_content_hash
from support.api import Api, running_api, settings_for
from support.old_freeze import old_payload
from support.sealed import BASE, fill_sealed

NO_BROKER = "amqp://guest:guest@127.0.0.1:1/"  # jobs stay in the outbox
TRICKY = ['"quoted" \\ back', "tab\there", "a\r\nb\nc\rd", "é 中文 עברית 😀✅❤️", "<b>x</b>"]


@pytest.fixture
async def api(database_url, queue_prefix, tmp_path) -> AsyncIterator[Api]:
    settings = settings_for(database_url, queue_prefix, tmp_path, amqp_url=NO_BROKER)
    async with running_api(settings, wait_for_broker=False) as api:
        yield api


async def fill(db: asyncpg.Connection, room: str, bodies: list[str]) -> None:
    await fill_sealed(db, room, bodies)


class Recording:
    """A connection that records each statement it runs (and its arguments)."""

    def __init__(self, conn: asyncpg.Connection, log: list[tuple[str, tuple[Any, ...]]]) -> None:
        self._conn, self._log = conn, log

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    async def _run(self, method: str, query: str, *args: Any) -> Any:
        self._log.append((query, args))
        return await getattr(self._conn, method)(query, *args)

    async def fetch(self, query: str, *args: Any) -> Any:
        return await self._run("fetch", query, *args)

    async def fetchrow(self, query: str, *args: Any) -> Any:
        return await self._run("fetchrow", query, *args)

    async def fetchval(self, query: str, *args: Any) -> Any:
        return await self._run("fetchval", query, *args)

    async def execute(self, query: str, *args: Any) -> Any:
        return await self._run("execute", query, *args)


class RecordingPool:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.log: list[tuple[str, tuple[Any, ...]]] = []

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[Recording]:
        async with self.pool.acquire() as conn:
            yield Recording(conn, self.log)


class NoQuota:
    active = False


def _literal(value: Any) -> str:
    """A statement argument as SQL text (EXECUTE takes no parameters)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        items = (f'"{v}"' if isinstance(v, str) else str(int(v)) for v in value)
        return "'{" + ",".join(items) + "}'"
    text = value.isoformat() if isinstance(value, dt.datetime) else str(value)
    return "'" + text.replace("'", "''") + "'"


async def rows_read(conn: asyncpg.Connection, query: str, args: tuple[Any, ...]) -> int:
    """Rows the statement's table and index scans produced (EXPLAIN ANALYZE), the most of its
    custom plan and of the generic plan the API's prepared statement switches to after five
    executions (which knows neither the room nor the ranges)."""
    counts = []
    for mode in ("force_custom_plan", "force_generic_plan"):
        await conn.execute(f"SET plan_cache_mode = {mode}")
        await conn.execute(f"PREPARE probe AS {query}")
        try:
            params = ", ".join(_literal(a) for a in args)
            explain = f"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE probe({params})"
            plan = json.loads(await conn.fetchval(explain))
        finally:
            await conn.execute("DEALLOCATE probe")
            await conn.execute("RESET plan_cache_mode")

        def walk(node: dict[str, Any]) -> int:
            own = node["Actual Rows"] * node["Actual Loops"] if "Relation Name" in node else 0
            return own + sum(walk(child) for child in node.get("Plans", []))

        counts.append(walk(plan[0]["Plan"]))
    return max(counts)


async def test_a_post_reads_as_much_for_100000_messages_as_for_10(api, db):
    rooms = {}
    for size in (10, 1_000, 100_000):  # all filled first: one table, whatever is measured
        rooms[size] = await api.room("olivia", f"Room of {size}")
        bodies = [f"message {i}" + (TRICKY[i % 5] if i % 100 == 7 else "") for i in range(size)]
        await fill(db, rooms[size], bodies)
    await db.execute("ANALYZE")
    seen = {}
    pool = await create_pool(api.settings)
    try:
        for size, room in rooms.items():
            recording = RecordingPool(pool)
            actor = Actor(User("olivia", "Olivia", frozenset()), None, None)
            created = await snapshots.create(
                recording,  # type: ignore[arg-type]
                api.settings,
                actor,
                uuid.UUID(room),
                SnapshotRequest(),
                None,
                NoQuota(),  # type: ignore[arg-type]
            )
            reads = [(q, a) for q, a in recording.log if "INSERT" not in q]
            writes = [q for q, _a in recording.log if "INSERT" in q]
            seen[size] = (len(reads), len(writes), [await rows_read(db, q, a) for q, a in reads])
            body = await manifests.payload_gzip(db, created.content_hash)
            assert body is not None
            payload = json.loads(gzip.decompress(body))
            assert len(payload["messages"]) == size
            options = SnapshotRequest().options.model_dump(mode="json")
            assert payload_content_hash(payload, options, "snapshot", 2) == created.content_hash
    finally:
        await pool.close()
    # The same statements (the frozen read, members, the open chunk's messages; one write);
    # rows read: the room, the caller's member row and the last sealed chunk; the members;
    # the open chunk's messages (10 in the small room, a full chunk of 50 in the others).
    assert seen[10][:2] == seen[1_000][:2] == seen[100_000][:2] == (3, 1)
    assert seen[1_000][2] == seen[100_000][2], seen
    assert seen[100_000][2][1:] == [1, 50] and seen[100_000][2][0] <= 5, seen
    assert seen[10][2][1:] == [1, 10], seen


async def test_the_payload_is_byte_for_byte_what_the_previous_release_froze(api, db):
    room = await api.room("olivia", 'Room "quoted" é')
    await api.add_member(room, "eddie", "editor")
    await fill(db, room, [f"{i}: {TRICKY[i % 5]}" for i in range(230)])
    scopes = [
        {},
        {"from": (BASE + dt.timedelta(seconds=75)).isoformat(), "to": None},
        {"from": None, "to": (BASE + dt.timedelta(seconds=160)).isoformat()},
        {
            "from": (BASE + dt.timedelta(seconds=75)).isoformat(),
            "to": (BASE + dt.timedelta(seconds=160)).isoformat(),
        },
        {"from": (BASE - dt.timedelta(days=1)).isoformat()},  # covers all: same as unscoped
    ]
    digests = []
    for scope in scopes:
        r = await api.snapshot(room, body={"scope": {k: v for k, v in scope.items() if v}})
        assert r.status_code == 202, r.text
        digest = r.json()["content_hash"]
        digests.append(digest)
        stored = await manifests.payload_gzip(db, digest)
        assert stored is not None
        since, until = (
            dt.datetime.fromisoformat(scope[k]) if scope.get(k) else None for k in ("from", "to")
        )
        assert gzip.decompress(stored) == await old_payload(db, room, since, until)
    assert digests[0] == digests[-1]  # a pure function of the content
    assert len(set(digests)) == 4


async def test_a_scoped_snapshot_shares_interior_chunks_and_a_title_stores_no_message_bytes(
    api, db
):
    room = await api.room()
    await fill(db, room, [f"message {i}" for i in range(230)])  # chunks 0-3 sealed, 4 open
    sealed = await db.fetchval("SELECT count(*) FROM chunks WHERE room_id = $1", uuid.UUID(room))
    assert sealed == 4

    async def stored() -> tuple[int, int, int]:
        return tuple(
            await db.fetchrow(
                "SELECT (SELECT count(*) FROM chunks), (SELECT count(*) FROM fragments),"
                " (SELECT coalesce(sum(bytes), 0) FROM fragments)"
            )
        )

    whole = await api.snapshot(room)
    after_whole = await stored()
    scope = {
        "from": (BASE + dt.timedelta(seconds=75)).isoformat(),  # inside chunk 1
        "to": (BASE + dt.timedelta(seconds=160)).isoformat(),  # inside chunk 3
    }
    scoped = await api.snapshot(room, body={"scope": scope})
    manifest = await db.fetchrow(
        "SELECT * FROM manifests WHERE content_hash = $1", scoped.json()["content_hash"]
    )
    assert (manifest["run_from"], manifest["run_to"]) == (2, 2)  # chunk 2, whole: shared
    assert len(manifest["lead"]) == len(manifest["trail"]) == 1  # the two edge fragments
    whole_manifest = await db.fetchrow(
        "SELECT * FROM manifests WHERE content_hash = $1", whole.json()["content_hash"]
    )
    assert (whole_manifest["run_from"], whole_manifest["run_to"]) == (0, 3)
    after_scoped = await stored()
    assert after_scoped[0] == after_whole[0]  # no chunk stored again
    assert after_scoped[1] == after_whole[1] + 2  # only the two edges are new

    for options in ({"title": "Another title"}, {"page_size": "Letter"}):
        r = await api.snapshot(room, body={"options": options})
        assert r.status_code == 202 and r.json()["content_hash"] != whole.json()["content_hash"]
    assert await stored() == after_scoped  # no message bytes stored for either variant
