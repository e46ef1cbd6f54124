"""Item 7: how soon a client learns that a task finished, from the moment the renderer's
``completed`` status event is published: an SSE client (``GET /api/v1/tasks/{id}/events``)
beside a polling client (``GET /api/v1/tasks/{id}`` every ``POLL_SECONDS``), in the same run,
on the same tasks.

The bench plays the renderer: it publishes the ``completed`` event itself (persistent, with
publisher confirms, as the renderer does), so the instant is known exactly and no render runs.
Each sample waits a random part of the poll interval before publishing, so the poller's phase
is not locked to the publish. Run alone with ``python -m bench.live_progress`` (from
``tests/``; ``BENCH_QUICK=1`` for fewer samples): it starts an API with the plan's workers and
no renderer. A bare ``LISTEN task_events`` connection in the bench shows when the status
event's commit was announced: the part of the latency that is the status consumer's, not the
stream's.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import sys
import time
from pathlib import Path
from typing import Any

import aio_pika
import asyncpg
import httpx
from snapshot_client import Client
from snapshot_shared.messages import StatusEvent
from support.pdf import stored_fake_pdf
from support.sse import EventReader, publish
from support.stack import Stack

from bench.plan import Plan
from bench.report import Row, ms, table
from bench.rooms import OWNER, create_room, text_bodies
from bench.stack import amqp_connect

POLL_SECONDS = 0.1  # the demo's progress bar (scripts/demo.py) polls this often
SAMPLE_TIMEOUT = 30.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _sample(
    client: httpx.AsyncClient,
    channel: aio_pika.abc.AbstractChannel,
    status_queue: str,
    auth: dict[str, str],
    created: dict[str, Any],
    rng: random.Random,
    notified: dict[str, dict[str, float]],
    store: Path,
) -> tuple[float, float, float]:
    """One task: seconds from the publish to the SSE client's, the poller's and a bare
    LISTEN connection's sight of the completion."""
    path = f"/api/v1/tasks/{created['task_id']}"
    seen: dict[str, float] = {}
    subscribed, polled = asyncio.Event(), asyncio.Event()
    notified[created["task_id"]] = seen

    async def listen() -> None:
        async with client.stream("GET", path + "/events", headers=auth) as response:
            reader = EventReader(response)
            while (event := await reader.next()) is not None:
                if event.event == "completed":
                    seen["sse"] = time.perf_counter()
                    return
                subscribed.set()

    async def poll() -> None:
        while True:
            task = (await client.get(path, headers=auth)).json()
            if task["status"] == "completed":
                seen["poll"] = time.perf_counter()
                return
            polled.set()
            await asyncio.sleep(POLL_SECONDS)

    clients = [asyncio.create_task(listen()), asyncio.create_task(poll())]
    try:
        await asyncio.wait_for(asyncio.gather(subscribed.wait(), polled.wait()), SAMPLE_TIMEOUT)
        await asyncio.sleep(rng.uniform(0, POLL_SECONDS))
        event = StatusEvent(
            task_id=created["task_id"],
            snapshot_id=created["snapshot_id"],
            event="completed",
            progress=100,
            phase="completed",
            cache="miss",
            # the API completes a task only with a stored PDF of its content
            artifact=stored_fake_pdf(store, created["content_hash"])[0],
            at=dt.datetime.now(dt.UTC),
        )
        published = time.perf_counter()
        await publish(channel, status_queue, event)
        await asyncio.wait_for(asyncio.gather(*clients), SAMPLE_TIMEOUT)
    finally:
        for task in clients:
            task.cancel()
    return seen["sse"] - published, seen["poll"] - published, seen["notify"] - published


async def _measure(stack: Stack, auth: dict[str, str], room: str, n: int) -> Any:
    rng = random.Random(7)
    base, status_queue = stack.base, f"{stack.prefix}render.status"
    conn = await amqp_connect()
    notified: dict[str, dict[str, float]] = {}

    def on_notify(_c: Any, _pid: int, _channel: str, payload: str) -> None:
        seen = notified.get(payload.partition(":")[0])
        if seen is not None:
            seen.setdefault("notify", time.perf_counter())

    listener = await asyncpg.connect(stack.database_url)
    await listener.add_listener("task_events", on_notify)
    sse, polling, notify = [], [], []
    try:
        channel = await conn.channel()
        async with httpx.AsyncClient(base_url=base, timeout=SAMPLE_TIMEOUT) as client:
            for i in range(n):
                r = await client.post(
                    f"/api/v1/rooms/{room}/snapshots",
                    json={"options": {"title": f"Live progress {i}"}},
                    headers=auth,
                )
                r.raise_for_status()
                a, b, c = await _sample(
                    client, channel, status_queue, auth, r.json(), rng, notified, stack.store
                )
                sse.append(a)
                polling.append(b)
                notify.append(c)
    finally:
        await conn.close()
        await listener.close()
    return sse, polling, notify


def run(stack: Stack, auth: dict[str, str], room: str, samples: int) -> list[Row]:
    """The row; needs the API running and no renderer consuming the room's jobs."""
    sse, polling, notify = asyncio.run(_measure(stack, auth, room, samples))
    sse_p50, sse_p99 = percentile(sse, 0.5) * 1000, percentile(sse, 0.99) * 1000
    poll_p50, poll_p99 = percentile(polling, 0.5) * 1000, percentile(polling, 0.99) * 1000
    floor_p50, floor_p99 = percentile(notify, 0.5) * 1000, percentile(notify, 0.99) * 1000
    return [
        Row(
            "7",
            f"renderer's `completed` published → client sees it, {samples} tasks",
            f"SSE stream: p50 {ms(sse_p50)}, p99 {ms(sse_p99)}",
            f"polling GET every {POLL_SECONDS * 1000:.0f} ms: p50 {ms(poll_p50)},"
            f" p99 {ms(poll_p99)}; the commit's NOTIFY at a bare LISTEN: p50"
            f" {ms(floor_p50)}, p99 {ms(floor_p99)}",
            sse_p50 / poll_p50,
            "SSE p99 < polling p50",
            sse_p99 < poll_p50,
            {"sse_s": sse, "polling_s": polling, "notify_s": notify},
        )
    ]


def main() -> int:
    plan = Plan.from_env()
    stack = Stack(workers=plan.api_workers)
    try:
        stack.start_api()
        auth = stack.auth(OWNER)
        with Client(stack.base, stack.token(OWNER), timeout=120) as client:
            room = create_room(client, "Live progress", text_bodies(10))
        rows = run(stack, auth, room, plan.live_samples)
    finally:
        stack.stop()
    print(table(rows))
    print(f"API workers {plan.api_workers}; BENCH_QUICK={int(plan.quick)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
