"""Sealed chunks (issue 12): a POST's cost whatever the room, and what sealing costs appends.

- POST p50, 1 client, rooms of 10 / 1,000 / 100,000 messages (the 100,000-message room is filled
  behind the API and sealed with the API's own ``seal_closed``; the others are posted), with the
  API's CPU per POST of the 1,000-message room (process counters, the outbox relay's splicing
  included: it runs in the same processes). No renderer consumes: jobs are dropped between runs.
- appending, per message: 50-message batches through the API (each closes and seals the chunk
  before it) next to a bare multi-row INSERT of the same rows (the floor).
- the relay's job body for the 1,000- and 100,000-message rooms: built from the stored members,
  timed in the bench's process (in the stack, jobs wait in the outbox for their user's fair
  turn while no renderer finishes them, so the API's counters in 12b hold little relay work).

Alone: ``BENCH_ONLY=sealed make bench`` (or ``python -m bench`` from ``tests/``).
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from typing import Any

from snapshot_api.db import manifests
from snapshot_client import Client
from snapshot_shared.messages import splice_job
from support.sealed import fill_sealed

from bench import db
from bench.api_load import Endpoints, LoadRun
from bench.load import LoadGenerator
from bench.plan import Plan
from bench.procstat import backend_pids
from bench.report import Row, ms, ratio
from bench.rooms import OWNER, create_room, text_bodies
from bench.settle import NoRenderer
from bench.stack import BenchStack

SIZES = (10, 1_000, 100_000)
BATCH = 50
BARE_INSERT = """
INSERT INTO messages (id, room_id, author_id, author_name, body, ordinal, chunk)
SELECT gen_random_uuid(), $1, 'bench', 'Bench', m.body, $3 + m.ord, 0
FROM unnest($2::text[]) WITH ORDINALITY AS m(body, ord)
"""


def _rooms(stack: BenchStack) -> dict[int, str]:
    rooms: dict[int, str] = {}
    with Client(stack.base, stack.token(OWNER), timeout=300) as client:
        for size in SIZES[:2]:
            rooms[size] = create_room(client, f"Sealed room {size}", text_bodies(size))
        rooms[SIZES[2]] = client.create_room("Sealed room 100000").id

    async def fill() -> None:
        conn = await db.connect(stack.database_url)
        try:
            await fill_sealed(conn.conn, rooms[SIZES[2]], text_bodies(SIZES[2]))
            await conn.conn.execute("ANALYZE")
        finally:
            await conn.close()

    asyncio.run(fill())
    return rooms


def _posts(lr: LoadRun, rooms: dict[int, str], auth: dict[str, str], samples: int) -> list[Row]:
    p50: dict[int, float] = {}
    data: dict[str, Any] = {}
    for size in SIZES:
        ep = Endpoints.for_room(rooms[size], auth)
        lr.go(f"sealed.warm@{size}", ep.post, mode="closed", concurrency=1, count=3, timeout=120)
        run = lr.go(
            f"sealed.post@{size}", ep.post, mode="closed", concurrency=1, count=samples, timeout=120
        )
        p50[size], data[str(size)] = run["p50_ms"], run
    small, big = p50[SIZES[0]], p50[SIZES[2]]
    one_k = data[str(SIZES[1])]
    api_cpu_ms = 1000 * one_k["cpu_cores"].get("api", 0.0) * one_k["wall_s"] / max(one_k["ok"], 1)
    return [
        Row(
            "12a",
            "POST p50, 1 client, rooms of 10 / 1,000 / 100,000 messages",
            " / ".join(ms(p50[s]) for s in SIZES),
            f"10-message room {ms(small)}",
            ratio(big, small),
            "100,000 ≤ 1.5× 10",
            None if big is None or small is None else big <= 1.5 * small,
            data,
        ),
        Row(
            "12b",
            "API CPU per POST, 1,000-message room (the relay's splice: row 12d)",
            f"{api_cpu_ms:.2f} ms",
            "before issue 12: see README (same machine, base commit)",
            None,
            "≤ 0.5× today's",
            None,
            {"api_cpu_ms": api_cpu_ms},
        ),
    ]


def _appends(stack: BenchStack, samples: int) -> dict[str, float]:
    """Per message: API appends of BATCH messages (sealing as they go) vs a bare INSERT."""
    api, bare = [], []
    with Client(stack.base, stack.token(OWNER), timeout=60) as client:
        room = client.create_room("Appends").id
        bare_room = client.create_room("Bare inserts").id
        for i in range(samples):
            bodies = text_bodies(BATCH, seed=100 + i)
            started = time.perf_counter()
            client.add_messages(room, bodies, batch_size=BATCH)
            api.append((time.perf_counter() - started) / BATCH)
            bare.append(asyncio.run(_bare_insert(stack, bare_room, bodies, i * BATCH)) / BATCH)

    async def sealed() -> int:
        conn = await db.connect(stack.database_url)
        try:
            return int(
                await conn.fetchval(
                    "SELECT count(*) FROM chunks WHERE room_id = $1", uuid.UUID(room)
                )
            )
        finally:
            await conn.close()

    return {
        "api_us": statistics.median(api) * 1e6,
        "bare_us": statistics.median(bare) * 1e6,
        "sealed_chunks": float(asyncio.run(sealed())),
    }


async def _bare_insert(stack: BenchStack, room: str, bodies: list[str], first: int) -> float:
    conn = await db.connect(stack.database_url)
    try:
        await conn.conn.execute("SELECT 1")  # connected and warm
        started = time.perf_counter()
        await conn.conn.execute(BARE_INSERT, uuid.UUID(room), bodies, first)
        return time.perf_counter() - started
    finally:
        await conn.close()


async def _relay_build(stack: BenchStack, room: str, samples: int) -> dict[str, float]:
    """The relay's work for the 100,000-message room's job: read the members, splice."""
    conn = await db.connect(stack.database_url)
    try:
        digest = await conn.fetchval(
            "SELECT content_hash FROM snapshots WHERE room_id = $1 LIMIT 1", uuid.UUID(room)
        )
        envelope = b'{"schema_version":1,"payload":{}}'
        times, size = [], 0
        for _ in range(samples):
            started = time.perf_counter()
            members = await manifests.payload_members(conn.conn, digest)
            assert members is not None
            body, _encoding = splice_job(
                envelope, members.before, members.middle, members.after, 1024, members.bytes
            )
            times.append(time.perf_counter() - started)
            size = len(body)
        return {"ms": statistics.median(times) * 1000, "bytes": float(size)}
    finally:
        await conn.close()


def run(stack: BenchStack, lg: LoadGenerator, plan: Plan) -> list[Row]:
    samples = 20 if plan.quick else 100
    rooms = _rooms(stack)
    stack.stop_renderers()  # the POST alone; jobs are dropped between runs
    servers = {"api": stack.api_pid, **backend_pids()}
    lr = LoadRun(lg, stack.port, servers, NoRenderer(stack, plan.settle_seconds), plan)
    rows = _posts(lr, rooms, stack.auth(OWNER), samples)
    appends = _appends(stack, 5 if plan.quick else 20)
    relay = {
        size: asyncio.run(_relay_build(stack, rooms[size], 3 if plan.quick else 10))
        for size in SIZES[1:]
    }
    rows.append(
        Row(
            "12c",
            f"appending, per message ({BATCH}-message batches through the API, sealing)",
            f"{appends['api_us']:.0f} µs",
            f"bare INSERT of the rows {appends['bare_us']:.0f} µs",
            ratio(appends["api_us"], appends["bare_us"]),
            "report it",
            None,
            appends,
        )
    )
    rows.append(
        Row(
            "12d",
            "relay: job body from stored members, 1,000 / 100,000 messages",
            " / ".join(
                f"{ms(r['ms'])} ({r['bytes'] / 2**20:.2f} MiB gzip)" for r in relay.values()
            ),
            "",
            None,
            "report it (bytes, not references: README)",
            None,
            {str(k): v for k, v in relay.items()},
        )
    )
    return rows
