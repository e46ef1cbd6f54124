"""The bench's snapshot requests for the latency-sensitive single requests of items 3–5.

The shared client (``snapshot_client.calls``) builds each request and reads its answer: the
typed 202 answer, or the client's error for an error answer (``RequestRefused`` /
``ServerError`` with the problem's code). Only the transport differs: the load generator's raw
keep-alive connection, so a POST's timing carries microseconds of client overhead where an
httpx call adds most of a millisecond, which would show in item 4's memory-hit latencies.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from uuid import UUID

from snapshot_client import calls

from bench.loadgen import Connection, build_request

RETRY_SECONDS = 60.0


class ApiClient:
    def __init__(self, port: int, auth: dict[str, str]) -> None:
        self.port = port
        self.auth = auth
        self._conn: Connection | None = None

    async def _connection(self) -> Connection:
        if self._conn is None or self._conn.closed:
            loop = asyncio.get_running_loop()
            _, self._conn = await loop.create_connection(
                lambda: Connection(keep_body=True), "127.0.0.1", self.port
            )
        return self._conn

    async def snapshot(self, room: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """POST a snapshot request: ``accepted`` (the client's ``SnapshotAccepted``), its ids
        as UUIDs (what ``bench.db`` takes), ``elapsed`` (s) and ``sent`` (perf time)."""
        body = body or {}
        call = calls.create_snapshot(room, scope=body.get("scope"), options=body.get("options"))
        spec = {"method": call.method, "path": call.path, "body": call.json}
        raw = build_request(
            "127.0.0.1", self.port, {**spec, "headers": {**self.auth, **call.headers}}
        )
        deadline = time.monotonic() + RETRY_SECONDS
        while True:
            conn = await self._connection()
            sent = time.perf_counter()
            status = await conn.request(raw)
            elapsed = time.perf_counter() - sent
            if status != 503 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)  # PostgreSQL restarting (another suite's fault test)
        accepted = calls.read_snapshot_accepted(status, {}, bytes(conn.body))
        return {
            "accepted": accepted,
            "task_id": UUID(accepted.task_id),
            "snapshot_id": UUID(accepted.snapshot_id),
            "elapsed": elapsed,
            "sent": sent,
        }

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
