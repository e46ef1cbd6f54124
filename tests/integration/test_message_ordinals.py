"""Per-room message ordinals and chunks (migration 0009, ``snapshot_shared.chunking``) against
the real PostgreSQL: appends number a room's messages densely and cut its chunks exactly as
cutting the whole timeline would, also when many requests append to one room at once, and
snapshots carry the room's values."""

from __future__ import annotations

import asyncio
import gzip
import json
import uuid

import asyncpg
import pytest
from snapshot_api.db import manifests
from snapshot_shared.chunking import OpenChunk, append, cut
from snapshot_shared.limits import MESSAGE_BYTES, message_weight
from support.api import Api, running_api, settings_for
from support.sealed import assert_sealed

HEAVY = ("sixteen " * 2048)[:MESSAGE_BYTES]  # 16 KiB of words: two fit a chunk, three do not
LINES = "\n" * 500  # over a chunk's weight on its own
# What the stored weight (SQL, migration 0002) must count as message_weight does.
TRICKY = [
    "plain",
    "a\r\nb\nc\rd",  # CR LF once, LF, CR
    "\r\r\n\n\r",
    "😀✅❤️",  # emoji blocks and U+FE0F
    "👩‍👩‍👧 family (ZWJ)",
    "→ 𝐀 é 中文 עברית",  # astral but not emoji, multi-byte
    "⌚⏰☀⬛",  # the other emoji ranges of the class
    "tab\there",
    HEAVY,
    LINES,
    "😀" * 4096,
]


@pytest.fixture
async def api(database_url, queue_prefix, tmp_path):
    settings = settings_for(database_url, queue_prefix, tmp_path, db_pool_max=10)
    async with running_api(settings) as api:
        yield api


async def _post(api: Api, room: str, bodies: list[str], user: str = "olivia") -> list[dict]:
    r = await api.client.post(
        f"/api/v1/rooms/{room}/messages",
        json={"messages": [{"body": b} for b in bodies]},
        headers=api.auth(user),
    )
    assert r.status_code == 201, r.text
    return list(r.json())


async def _timeline(db: asyncpg.Connection, room: str) -> list[asyncpg.Record]:
    return list(
        await db.fetch(
            "SELECT seq, ordinal, chunk, weight, body, created_at FROM messages"
            " WHERE room_id = $1 ORDER BY ordinal",
            uuid.UUID(room),
        )
    )


async def _state(db: asyncpg.Connection, room: str) -> tuple[int, OpenChunk]:
    row = await db.fetchrow(
        "SELECT next_ordinal, chunk_index, chunk_messages, chunk_weight FROM rooms WHERE id = $1",
        uuid.UUID(room),
    )
    return row["next_ordinal"], OpenChunk(*list(row.values())[1:])


async def test_the_stored_weight_is_message_weight(api, db):
    room = await api.room()
    await _post(api, room, TRICKY)
    rows = await _timeline(db, room)
    assert [r["body"] for r in rows] == TRICKY
    assert [r["weight"] for r in rows] == [message_weight(b) for b in TRICKY]


async def test_appends_in_batches_cut_the_chunks_of_the_whole_timeline(api, db):
    room = await api.room()
    bodies = [f"m{i}" for i in range(120)]  # 50 + 50 + 20 by count
    bodies[7:7] = [HEAVY, HEAVY, HEAVY]  # the third closes a chunk by weight
    bodies[60:60] = [LINES, "after the lines", LINES, LINES]  # each alone
    batches = [1, 7, 2, 60, 3, 1, 500]
    posted: list[dict] = []
    rest = list(bodies)
    for size in batches:
        batch, rest = rest[:size], rest[size:]
        if batch:
            posted += await _post(api, room, batch)

    weights = [message_weight(b) for b in bodies]
    chunks, end = append(OpenChunk(), weights)
    assert len(set(chunks)) > 6  # boundaries by count, by weight and by heavy messages
    rows = await _timeline(db, room)
    assert [r["body"] for r in rows] == bodies
    assert [r["ordinal"] for r in rows] == list(range(len(bodies)))
    assert [r["ordinal"] for r in posted] == list(range(len(bodies)))  # the API says it too
    assert [r["seq"] for r in rows] == sorted(r["seq"] for r in rows)  # posting order
    assert [r["chunk"] for r in rows] == chunks
    assert await _state(db, room) == (len(bodies), end)

    # A snapshot carries the room's values, in timeline order.
    accepted = await api.snapshot(room)
    assert accepted.status_code == 202, accepted.text
    stored = await manifests.payload_gzip(db, accepted.json()["content_hash"])
    frozen = json.loads(gzip.decompress(stored))["messages"]
    assert [(m["ordinal"], m["chunk"], m["body"]) for m in frozen] == [
        (r["ordinal"], r["chunk"], r["body"]) for r in rows
    ]


async def test_concurrent_appends_to_one_room_get_dense_unique_ordinals(api, db):
    room = await api.room()
    writers, batches, size = 8, 4, 6
    # One user each: a user's posts take turns on their rate limit row, users' posts do not.
    for w in range(writers):
        await api.add_member(room, f"writer{w}", "editor")

    def batch(w: int, b: int) -> list[str]:  # every fifth message heavy: weight boundaries too
        tags = [f"w{w} b{b} m{m}" for m in range(size)]
        return [
            f"{tag} {HEAVY}"[:MESSAGE_BYTES] if (w + b + m) % 5 == 0 else tag
            for m, tag in enumerate(tags)
        ]

    async def writer(w: int) -> None:
        for b in range(batches):
            await _post(api, room, batch(w, b), user=f"writer{w}")

    await asyncio.gather(*(writer(w) for w in range(writers)))

    rows = await _timeline(db, room)
    total = writers * batches * size
    assert [r["ordinal"] for r in rows] == list(range(total))
    # A batch is one append: its messages are consecutive, in the order they were sent.
    ordinal_of = {r["body"]: r["ordinal"] for r in rows}
    for w in range(writers):
        for b in range(batches):
            ordinals = [ordinal_of[body] for body in batch(w, b)]
            assert ordinals == list(range(ordinals[0], ordinals[0] + size))
    weights = [message_weight(r["body"]) for r in rows]
    assert [r["chunk"] for r in rows] == cut(weights)
    assert await _state(db, room) == (total, append(OpenChunk(), weights)[1])
    # Later ordinals are never stamped earlier: a scope in time is a run of ordinals.
    stamps = [r["created_at"] for r in rows]
    assert stamps == sorted(stamps)


async def test_appends_seal_each_chunk_they_close_and_only_those(api, db):
    room = await api.room()
    bodies = [f"m {i}" for i in range(60)] + TRICKY + [f"n {i}" for i in range(70)]
    for start in range(0, len(bodies), 7):  # batches that close chunks now and then
        await _post(api, room, bodies[start : start + 7])
        await assert_sealed(db, room)  # after each append, in its own transaction
    assert await assert_sealed(db, room) >= 4
