"""Migration 0009 on rooms an earlier release filled: every message gets the ordinal and chunk
that ``snapshot_shared.chunking`` gives the room's timeline in insertion order (the order its
payloads used), every room its open chunk, and appends after the migration go on from there."""

from __future__ import annotations

import uuid

import asyncpg
import pytest
from snapshot_shared.chunking import OpenChunk, append, cut
from snapshot_shared.limits import MESSAGE_BYTES, message_weight
from support.api import running_api, settings_for
from support.old_schema import insert_messages, insert_room, migrate_until
from support.sealed import assert_sealed
from support.services import PG_BASE, drop_database, unique

HEAVY = ("sixteen " * 2048)[:MESSAGE_BYTES]
LINES = "\n" * 500
EMOJI = "😀" * (MESSAGE_BYTES // 4)
EDGE = "e" * 15_600  # three weigh exactly 48,000: the budget, which still fits
# Interleaved inserts of two rooms, heavy messages among short ones: boundaries by count, by
# weight (two HEAVY fit a chunk, a third does not) and single messages over the budget.
BUSY = (
    [f"short {i}" for i in range(70)]
    + [HEAVY, HEAVY, HEAVY, "after heavy", LINES, EMOJI, "a\r\nb\rc\n😀✅❤️"]
    + [f"more {i}" for i in range(130)]
    + [LINES, LINES, HEAVY, LINES, EDGE, EDGE, EDGE, "tiny", "last"]
)
QUIET = [f"quiet {i}" for i in range(50)]  # exactly one full chunk


@pytest.fixture
def old_database():
    dsn = f"{PG_BASE}/{unique('test_mig_')}"
    try:
        yield dsn
    finally:
        drop_database(dsn)


async def _fill(dsn: str) -> dict[str, tuple[uuid.UUID, list[str]]]:
    assert (await migrate_until(dsn, 8))[-1] == "0008_webhooks"
    conn = await asyncpg.connect(dsn)
    try:
        busy, quiet = await insert_room(conn, "Busy"), await insert_room(conn, "Quiet")
        empty = await insert_room(conn, "Empty")
        for start in range(0, max(len(BUSY), len(QUIET)), 40):  # seq interleaves the rooms
            await insert_messages(conn, busy, BUSY[start : start + 40])
            await insert_messages(conn, quiet, QUIET[start : start + 40])
    finally:
        await conn.close()
    return {"busy": (busy, BUSY), "quiet": (quiet, QUIET), "empty": (empty, [])}


async def _rows(conn: asyncpg.Connection, room: uuid.UUID) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            "SELECT ordinal, chunk, weight, body FROM messages WHERE room_id = $1 ORDER BY seq",
            room,
        )
    )


async def _state(conn: asyncpg.Connection, room: uuid.UUID) -> tuple[int, OpenChunk]:
    row = await conn.fetchrow(
        "SELECT next_ordinal, chunk_index, chunk_messages, chunk_weight FROM rooms WHERE id = $1",
        room,
    )
    return row["next_ordinal"], OpenChunk(*list(row.values())[1:])


async def test_the_backfill_cuts_each_room_as_the_python_rule_does(
    old_database, queue_prefix, tmp_path
):
    dsn = old_database
    rooms = await _fill(dsn)
    assert await migrate_until(dsn, 10_000) == [
        "0009_message_chunks",
        "0010_task_pieces",
        "0011_sealed_chunks",
    ]
    conn = await asyncpg.connect(dsn)
    try:
        for room, bodies in rooms.values():
            rows = await _rows(conn, room)
            weights = [message_weight(b) for b in bodies]
            assert [r["body"] for r in rows] == bodies
            assert [r["weight"] for r in rows] == weights  # SQL's weight is message_weight
            assert [r["ordinal"] for r in rows] == list(range(len(bodies)))
            chunks, end = append(OpenChunk(), weights)
            assert [r["chunk"] for r in rows] == chunks
            assert await _state(conn, room) == (len(bodies), end)
        assert len(set(cut([message_weight(b) for b in BUSY]))) >= 10

        # Appends after the migration continue the room's timeline where the backfill left it.
        async with running_api(settings_for(dsn, queue_prefix, tmp_path)) as api:
            for name in ("busy", "quiet", "empty"):
                room, bodies = rooms[name]
                for batch in (["next"], [HEAVY, HEAVY, "x"]):
                    r = await api.client.post(
                        f"/api/v1/rooms/{room}/messages",
                        json={"messages": [{"body": b} for b in batch]},
                        headers=api.auth("olivia"),
                    )
                    assert r.status_code == 201, r.text
                    bodies = bodies + batch
                rows = await _rows(conn, room)
                weights = [message_weight(b) for b in bodies]
                assert [(r["body"], r["ordinal"]) for r in rows] == [
                    (b, i) for i, b in enumerate(bodies)
                ]
                assert [r["chunk"] for r in rows] == cut(weights)
                assert await _state(conn, room) == (len(bodies), append(OpenChunk(), weights)[1])
    finally:
        await conn.close()


async def test_the_migration_seals_every_closed_chunk_of_every_room(old_database):
    dsn = old_database
    rooms = await _fill(dsn)
    await migrate_until(dsn, 10_000)
    conn = await asyncpg.connect(dsn)
    try:
        sealed = {name: await assert_sealed(conn, room) for name, (room, _b) in rooms.items()}
    finally:
        await conn.close()
    # Busy has >= 10 chunks (all but its open one sealed); Quiet's one chunk is still open.
    assert sealed["busy"] >= 9 and sealed["quiet"] == 0 and sealed["empty"] == 0
