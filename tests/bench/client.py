"""The bench's snapshot requests for the latency-sensitive single requests of items 3–5.

The answer is read by the shared client (``snapshot_client``): the typed 202 answer, and an
error answer becomes the client's error (``RequestRefused``/``ServerError`` with the problem's
code). Only the transport differs: the load generator's raw keep-alive connection, so a POST's
timing carries microseconds of client overhead where an httpx call adds most of a
millisecond, which would show in item 4's memory-hit latencies.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any
from uuid import UUID

import httpx
from snapshot_client import SnapshotAccepted
from snapshot_client.errors import problem_from

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
        raw = build_request(
            "127.0.0.1",
            self.port,
            {
                "method": "POST",
                "path": f"/api/v1/rooms/{room}/snapshots",
                "headers": self.auth,
                "body": body or {},
            },
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
        if status != 202:
            raise problem_from(status, httpx.Headers(), bytes(conn.body))
        accepted = SnapshotAccepted.from_json(json.loads(bytes(conn.body)))
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
