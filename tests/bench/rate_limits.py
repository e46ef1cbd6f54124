"""What the per-user rate limit check costs a creating request: the same requests against two
in-process APIs on one fresh database, one with SNAPSHOT_API_RATE_LIMITS at high limits (every
request is checked and admitted) and one with ``off``, interleaved so that both see the same
machine, and compared as a same-run ratio of median latencies.

Run on its own (it is not part of ``make bench``'s table): ``cd tests && python -m
bench.rate_limits`` (``BENCH_QUICK=1``: fewer samples).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
from support.api import Api, running_api, settings_for
from support.services import (
    HIGH_RATE_LIMITS,
    create_database,
    delete_topology,
    drop_database,
    unique,
)

from bench.report import Row, ms, ratio

SAMPLES = 60 if os.environ.get("BENCH_QUICK") else 400
TARGET = 1.25  # the check may add at most a quarter to a creating request's latency


async def _timed(call: Callable[[], Awaitable[httpx.Response]], status: int) -> float:
    t0 = time.perf_counter()
    r = await call()
    elapsed = (time.perf_counter() - t0) * 1000
    assert r.status_code == status, r.text[:300]
    return elapsed


def _requests(
    api: Api, room: str
) -> dict[str, tuple[Callable[[], Awaitable[httpx.Response]], int]]:
    auth = api.auth("bench-user")
    c = api.client
    return {
        "POST /rooms": (lambda: c.post("/api/v1/rooms", json={"name": "b"}, headers=auth), 201),
        "POST /messages (1)": (
            lambda: c.post(f"/api/v1/rooms/{room}/messages", json={"body": "m"}, headers=auth),
            201,
        ),
        "POST /snapshots": (
            lambda: c.post(f"/api/v1/rooms/{room}/snapshots", json={}, headers=auth),
            202,
        ),
    }


async def measure(database_url: str, prefix: str, store: Path) -> list[Row]:
    quiet = {"log_level": "WARNING"}
    on = settings_for(database_url, prefix, store, rate_limits=HIGH_RATE_LIMITS, **quiet)
    off = settings_for(database_url, prefix, store, rate_limits="off", **quiet)
    async with running_api(on) as api_on, running_api(off) as api_off:
        rooms = {}
        for name, api in (("on", api_on), ("off", api_off)):
            rooms[name] = await api.room("bench-user")
            await api.post_messages(rooms[name], [f"line {i}" for i in range(20)], "bench-user")
        calls = {"on": _requests(api_on, rooms["on"]), "off": _requests(api_off, rooms["off"])}
        samples: dict[str, dict[str, list[float]]] = {"on": {}, "off": {}}
        for figure in calls["on"]:
            for _ in range(10):  # warm both
                for side in ("on", "off"):
                    await _timed(*calls[side][figure])
            for i in range(SAMPLES):
                for side in ("on", "off") if i % 2 else ("off", "on"):
                    took = await _timed(*calls[side][figure])
                    samples[side].setdefault(figure, []).append(took)
    rows = []
    for figure in calls["on"]:
        with_check = statistics.median(samples["on"][figure])
        without = statistics.median(samples["off"][figure])
        r = ratio(with_check, without)
        rows.append(
            Row(
                id="RL",
                figure=f"{figure}: median latency, limits on vs off",
                measured=ms(with_check),
                baseline=ms(without),
                ratio=r,
                target=f"≤ {TARGET}×",
                met=r is not None and r <= TARGET,
                data={"samples": SAMPLES},
            )
        )
    return rows


def main() -> int:
    database_url, prefix = create_database(), unique("b") + "."
    try:
        with tempfile.TemporaryDirectory(prefix="bench-rl-") as store:
            rows = asyncio.run(measure(database_url, prefix, Path(store)))
    finally:
        drop_database(database_url)
        delete_topology(prefix)
    for row in rows:
        print(
            f"{row.id}  {row.figure:<52} {row.measured:>9} vs {row.baseline:>9}"
            f"  ratio {row.ratio:.2f}  target {row.target}  {'met' if row.met else 'NOT MET'}"
        )
    return 0 if all(row.met for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
