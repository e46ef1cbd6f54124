"""Item 8: how soon a client hears that its snapshot is ready. From the renderer's ``completed``
(the event's ``at``, stored as the task's ``completed_at``) to a webhook receiver on 127.0.0.1
getting the signed event, beside a polling client of the same task that waits what the API's
``Retry-After`` says between polls (the polite client the API asks for), in the same run.

Each sample is one snapshot (a fresh title, so a real render), requested with a
``callback_url``, with its polling client started on the 202. Both sides are timed on this
machine's wall clock against the same ``completed_at``.

Alone (its own stack, nothing else of the bench): ``cd tests && python -m bench.webhooks``
(``BENCH_QUICK=1`` for a handful of samples).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from typing import Any

import httpx
from support.waiting import until
from support.webhook_receiver import Receiver

from bench import db
from bench.report import Row, ms, table

SECRET_PATH = "/api/v1/webhooks/secret"


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _poll(client: httpx.AsyncClient, task_id: str, auth: dict[str, str]) -> float:
    """GET the task until it is terminal, sleeping its Retry-After; the wall time it saw so."""
    while True:
        r = await client.get(f"/api/v1/tasks/{task_id}", headers=auth)
        if r.json()["status"] in ("completed", "failed"):
            return time.time()
        await asyncio.sleep(float(r.headers.get("retry-after", "1")))


async def _sample(
    client: httpx.AsyncClient,
    conn: db.Db,
    receiver: Receiver,
    auth: dict[str, str],
    room: str,
    title: str,
) -> dict[str, Any]:
    body = {"options": {"title": title}, "callback_url": receiver.url}
    r = await client.post(f"/api/v1/rooms/{room}/snapshots", json=body, headers=auth)
    assert r.status_code == 202, r.text
    task_id = r.json()["task_id"]
    polled = await _poll(client, task_id, auth)

    async def arrived() -> float | None:
        got = [x for x in receiver.received if task_id.encode() in x.body]
        return got[0].at if got else None

    webhook = await until(arrived, timeout=60, what=f"the webhook of {task_id}")
    row = await conn.fetchrow("SELECT status, completed_at FROM tasks WHERE id = $1", task_id)
    done = row["completed_at"].timestamp()
    return {"status": row["status"], "webhook_s": webhook - done, "poll_s": polled - done}


async def measure(base: str, dsn: str, auth: dict[str, str], room: str, samples: int) -> Row:
    receiver = Receiver()
    receiver.start()
    conn = await db.connect(dsn)
    try:
        async with httpx.AsyncClient(base_url=base, timeout=60) as client:
            r = await client.post(SECRET_PATH, headers=auth)
            assert r.status_code == 200, r.text
            runs = [
                await _sample(client, conn, receiver, auth, room, f"Webhook sample {i}")
                for i in range(samples)
            ]
    finally:
        await conn.close()
        receiver.stop()
    hook = [s["webhook_s"] * 1000 for s in runs]
    poll = [s["poll_s"] * 1000 for s in runs]
    hook_p50, poll_p50 = statistics.median(hook), statistics.median(poll)
    failed = sum(s["status"] != "completed" for s in runs)
    return Row(
        "8",
        f"webhook: renderer's completed → receiver has the signed event, {samples} snapshots",
        f"p50 {ms(hook_p50)}, p99 {ms(_p(hook, 0.99))}",
        f"polling GET /tasks/{{id}} at Retry-After: p50 {ms(poll_p50)}, p99 {ms(_p(poll, 0.99))}",
        hook_p50 / poll_p50,
        "webhook p50 < polling p50",
        hook_p50 < poll_p50 and failed == 0,
        {"webhook_ms": hook, "poll_ms": poll, "failed": failed},
    )


def main() -> int:
    """This row alone, on a stack of its own (API with 2 workers, one renderer)."""
    import os

    from snapshot_client import Client

    from bench.rooms import OWNER, create_room, text_bodies
    from bench.stack import BenchStack

    samples = 5 if os.environ.get("BENCH_QUICK", "") not in ("", "0") else 40
    stack = BenchStack(api_workers=2, renderer_concurrency=1, render_timeout=120)
    try:
        stack.start_api()
        stack.start_renderer()
        auth = stack.auth(OWNER)
        with Client(stack.base, stack.token(OWNER), timeout=60) as client:
            room = create_room(client, "Webhook bench room", text_bodies(20))
        row = asyncio.run(measure(stack.base, stack.database_url, auth, room, samples))
    finally:
        stack.stop()
    print(table([row]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
