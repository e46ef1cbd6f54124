"""Item 4: cache hits. POST → completed for repeated content answered from the renderer's
memory LRU, and from the disk store by a renderer replica whose memory is empty (as after a
restart: see ``BenchStack.start_all``), for ~1 MB PDFs; the service time the renderer itself
reports for each; the disk store's read in-process beside a bare file read.

Baselines: the POST's own 202 latency (what the asynchronous part adds), one broker-confirmed
publish (a hit's ``render_ms`` is its look-up, memory or verified disk read; the one
``completed`` event it then sends costs a confirmed publish), and ``Path.read_bytes`` of the
same file.
"""

from __future__ import annotations

import datetime as dt
import statistics
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aio_pika
from snapshot_renderer.cache.disk import DiskStore
from snapshot_shared.messages import StatusEvent, encode
from snapshot_shared.store import pdf_path

from bench import db
from bench.client import ApiClient
from bench.loadgen import percentile
from bench.report import Row, ms, ratio
from bench.stack import amqp_connect


@dataclass
class Hits:
    accepted_ms: list[float]
    completed_ms: list[float]
    render_ms: list[float]
    caches: dict[str, int]
    snapshot_ids: list[uuid.UUID]
    keys: list[str]
    bytes: list[int]

    def p(self, values: list[float], q: float) -> float | None:
        return percentile(sorted(values), q)


async def post_until_done(
    port: int, auth: dict[str, str], dsn: str, room: str, bodies: list[dict[str, Any]]
) -> Hits:
    """One request at a time: POST, then poll the task row every ms until it is terminal."""
    client, conn = ApiClient(port, auth), await db.connect(dsn)
    accepted, completed, ids, snaps = [], [], [], []
    try:
        for body in bodies:
            answer = await client.snapshot(room, body)
            done = await db.wait_completed(conn, answer["task_id"], timeout=300)
            accepted.append(answer["elapsed"] * 1000)
            completed.append((done - answer["sent"]) * 1000)
            ids.append(answer["task_id"])
            snaps.append(answer["snapshot_id"])
        rows = {r["id"]: r for r in await db.tasks(conn, ids)}
    finally:
        client.close()
        await conn.close()
    ordered = [rows[i] for i in ids]
    caches: dict[str, int] = {}
    for row in ordered:
        key = str(row["cache"] or row["status"])
        caches[key] = caches.get(key, 0) + 1
    return Hits(
        accepted,
        completed,
        [float(r["render_ms"] or 0) for r in ordered],
        caches,
        snaps,
        [str(r["artifact_key"]) for r in ordered],
        [int(r["artifact_bytes"] or 0) for r in ordered],
    )


async def render_all(
    port: int, auth: dict[str, str], dsn: str, room: str, bodies: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Request every body at once and wait for all (the cache misses that fill the store)."""
    client, conn = ApiClient(port, auth), await db.connect(dsn)
    try:
        accepted = [await client.snapshot(room, body) for body in bodies]
        task_ids = [a["task_id"] for a in accepted]
        await db.wait_all(conn, task_ids, timeout=120 + 30 * len(bodies))
        return await db.tasks(conn, task_ids)
    finally:
        client.close()
        await conn.close()


async def confirm_rtt_ms(prefix: str, samples: int) -> list[float]:
    """Persistent, mandatory publishes of a real status event to a quorum queue, each timed
    until the broker's confirm: what one status event costs the renderer at best."""
    event = StatusEvent(
        task_id=uuid.uuid4(),
        snapshot_id=uuid.uuid4(),
        event="progress",
        progress=20,
        phase="rendering",
        renderer_id="bench",
        at=dt.datetime.now(dt.UTC),
    )
    body, _ = encode(event)
    conn = await amqp_connect()
    try:
        channel = await conn.channel(publisher_confirms=True, on_return_raises=True)
        queue = await channel.declare_queue(
            f"{prefix}bench.rtt", durable=True, arguments={"x-queue-type": "quorum"}
        )
        times = []
        for _ in range(samples):
            message = aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
            started = time.perf_counter()
            await channel.default_exchange.publish(message, routing_key=queue.name, mandatory=True)
            times.append((time.perf_counter() - started) * 1000)
        await queue.delete(if_unused=False, if_empty=False)
        return times
    finally:
        await conn.close()


def disk_reads_ms(store: Path, key: str, samples: int) -> tuple[list[float], list[float]]:
    """The renderer's ``DiskStore.read_sync`` of one entry beside ``Path.read_bytes``."""
    disk = DiskStore(store, 2**40)
    path = pdf_path(store, key)
    ours, bare = [], []
    for _ in range(samples):
        started = time.perf_counter()
        result, _entry = disk.read_sync(key)
        ours.append((time.perf_counter() - started) * 1000)
        assert result == "hit", result
        started = time.perf_counter()
        path.read_bytes()
        bare.append((time.perf_counter() - started) * 1000)
    return ours, bare


def _p50_p99(values: list[float]) -> str:
    ordered = sorted(values)
    return f"p50 {ms(percentile(ordered, 50))}, p99 {ms(percentile(ordered, 99))}"


def rows_for(memory: Hits, disk: Hits, rtt: list[float], reads: tuple[list[float], ...]) -> list:
    mem_p50 = statistics.median(memory.completed_ms)
    disk_mib = statistics.median(disk.bytes) / 2**20
    one_rtt = statistics.median(rtt)
    ours, bare = reads
    mem_service, disk_service = (
        statistics.median(memory.render_ms),
        statistics.median(disk.render_ms),
    )
    return [
        Row(
            "4",
            f"memory hit: POST → completed ({len(memory.completed_ms)} sequential)",
            _p50_p99(memory.completed_ms),
            f"POST → 202 p50 {ms(statistics.median(memory.accepted_ms))}",
            ratio(mem_p50, statistics.median(memory.accepted_ms)),
            "p50 ≤ 15 ms",
            mem_p50 <= 15 and set(memory.caches) == {"memory"},
            {"caches": memory.caches, "completed_ms": memory.completed_ms},
        ),
        Row(
            "4",
            f"disk hit (fresh renderer replica), {disk_mib:.2f} MiB PDF: POST → completed",
            _p50_p99(disk.completed_ms),
            f"POST → 202 p50 {ms(statistics.median(disk.accepted_ms))}",
            ratio(statistics.median(disk.completed_ms), statistics.median(disk.accepted_ms)),
            "",
            None,
            {"caches": disk.caches, "completed_ms": disk.completed_ms, "bytes": disk.bytes},
        ),
        Row(
            "4",
            "memory hit service time in the renderer (look-up, render_ms)",
            _p50_p99(memory.render_ms),
            f"1 confirmed publish {ms(one_rtt)}",
            ratio(mem_service, one_rtt),
            "",
            None,
            {"render_ms": memory.render_ms, "confirm_rtt_ms": rtt},
        ),
        Row(
            "4",
            f"disk hit service time in the renderer, {disk_mib:.2f} MiB (look-up, render_ms)",
            _p50_p99(disk.render_ms),
            f"1 confirmed publish {ms(one_rtt)}",
            ratio(disk_service, one_rtt),
            "≤ 5 ms for 1 MB",
            disk_service <= 5 and set(disk.caches) == {"disk"},
            {"render_ms": disk.render_ms},
        ),
        Row(
            "4",
            f"DiskStore.read_sync of that {disk_mib:.2f} MiB entry, in-process",
            _p50_p99(ours),
            f"Path.read_bytes p50 {ms(statistics.median(bare))}",
            ratio(statistics.median(ours), statistics.median(bare)),
            "",
            None,
            {"read_sync_ms": ours, "read_bytes_ms": bare},
        ),
    ]
