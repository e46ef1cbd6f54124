"""Fair rendering: a small user's cache-miss latency on an idle stack, then while another user
floods the stack with distinct misses, in the same run (target: ≤ 2× the idle latency).

The small user requests one fresh snapshot at a time (a new title each: a cache miss), waits
for it, and requests the next; the flooder requests ``FLOOD`` distinct misses at once just
before the small user's measured requests start, and the flood is checked to still be under
way when the last of them completes (otherwise the later samples would measure an idle stack
and the row is not met, whatever the ratio).
"""

from __future__ import annotations

import asyncio
import statistics
from typing import Any

from snapshot_client import Client

from bench import db
from bench.client import ApiClient
from bench.report import Row, ms
from bench.rooms import create_room, text_bodies
from bench.stack import BenchStack

FLOOD = 20
SMALL_USER, FLOODER = "bench-small", "bench-flooder"
ROOM_MESSAGES = 100


async def _small_misses(
    client: ApiClient, conn: db.Db, room: str, titles: list[str]
) -> list[float]:
    """Latency (POST sent → task terminal) of each miss, one at a time."""
    latencies = []
    for title in titles:
        answer = await client.snapshot(room, {"options": {"title": title}})
        done = await db.wait_completed(conn, answer["task_id"], timeout=600)
        latencies.append((done - answer["sent"]) * 1000)
    return latencies


async def _measure(
    port: int, stack: BenchStack, dsn: str, rooms: dict[str, str], samples: int
) -> dict[str, Any]:
    small = ApiClient(port, stack.auth(SMALL_USER))
    flooder = ApiClient(port, stack.auth(FLOODER))
    conn = await db.connect(dsn)
    try:
        await _small_misses(small, conn, rooms[SMALL_USER], ["Warm-up"])  # workers warm
        idle = await _small_misses(
            small, conn, rooms[SMALL_USER], [f"Idle {i}" for i in range(samples)]
        )
        flood = [
            await flooder.snapshot(rooms[FLOODER], {"options": {"title": f"Flood {i}"}})
            for i in range(FLOOD)
        ]
        flood_ids = [a["task_id"] for a in flood]
        busy = await _small_misses(
            small, conn, rooms[SMALL_USER], [f"Busy {i}" for i in range(samples)]
        )
        left = FLOOD - await conn.fetchval(
            "SELECT count(*) FROM tasks WHERE id = ANY($1::uuid[])"
            " AND status IN ('completed', 'failed')",
            flood_ids,
        )
        await db.wait_all(conn, flood_ids, timeout=120 + 30 * FLOOD)
        rows = await db.tasks(conn, flood_ids)
    finally:
        small.close()
        flooder.close()
        await conn.close()
    return {
        "idle_ms": idle,
        "busy_ms": busy,
        "flood_left_when_measured": left,
        "flood_failed": sum(r["status"] != "completed" for r in rows),
        "flood_caches": sorted({str(r["cache"]) for r in rows}),
    }


def run(stack: BenchStack, samples: int) -> list[Row]:
    rooms = {}
    for user, n in ((SMALL_USER, ROOM_MESSAGES), (FLOODER, ROOM_MESSAGES)):
        with Client(stack.base, stack.token(user), timeout=120) as client:
            rooms[user] = create_room(client, f"Flood bench {user}", text_bodies(n))
    data = asyncio.run(_measure(stack.port, stack, stack.database_url, rooms, samples))
    idle, busy = statistics.median(data["idle_ms"]), statistics.median(data["busy_ms"])
    ratio = busy / idle
    ok = ratio <= 2.0 and data["flood_left_when_measured"] > 0 and not data["flood_failed"]
    return [
        Row(
            "flood",
            f"small user's miss ({ROOM_MESSAGES} messages, POST → completed, p50 of {samples})"
            f" while another user floods {FLOOD} distinct misses",
            f"{ms(busy)}, max {ms(max(data['busy_ms']))}"
            f" ({data['flood_left_when_measured']} of the flood still open at the end)",
            f"idle stack: {ms(idle)}",
            ratio,
            "≤ 2× idle",
            ok,
            data,
        )
    ]
