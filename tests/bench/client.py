"""A lean in-process HTTP client for the latency-sensitive single requests of items 3–5.

It reuses the load generator's raw keep-alive connection, so a POST's timing carries only
microseconds of client overhead (an httpx call adds most of a millisecond).
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any
from uuid import UUID

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
        """POST a snapshot request; the 202 body plus ``elapsed`` (s) and ``sent`` (perf time)."""
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
            raise RuntimeError(f"snapshot request answered {status}: {bytes(conn.body)[:300]!r}")
        answer: dict[str, Any] = json.loads(bytes(conn.body))
        answer["task_id"] = UUID(answer["task_id"])
        answer["snapshot_id"] = UUID(answer["snapshot_id"])
        return {**answer, "elapsed": elapsed, "sent": sent}

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
