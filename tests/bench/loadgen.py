"""An HTTP/1.1 load generator that runs in its own process (``python -m bench.loadgen``).

Why our own: Debian has ``wrk`` and ``hey``, but both are closed-loop (a slow answer delays the
next request, which hides queueing: coordinated omission), and ``wrk2`` is not packaged. This
one is open-loop like wrk2: request *i* is due at ``t0 + i / rate`` whatever happened before,
and its latency is measured from that scheduled time, so waiting for a free connection counts.

It speaks raw HTTP/1.1 over keep-alive connections on uvloop (no HTTP client library on the
hot path, so it stays cheap), reads one JSON spec per stdin line and answers one JSON result
per stdout line, including its own CPU time, so the bench can show it is not the bottleneck.

Spec: ``{"mode": "open" | "closed", "host", "port", "requests": [{"method", "path",
"headers", "body"}], "rate", "duration", "concurrency", "count", "connections", "timeout"}``.
Requests are sent round-robin from ``requests``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import resource
import sys
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

import uvloop

GRACE_SECONDS = 5.0  # default wait for late answers after an open-loop schedule ("grace")
MIN_SLEEP = 0.001
UNFINISHED = math.inf  # latency of a request with no answer by the end of the run


class HttpError(Exception):
    """A request that got no complete HTTP answer."""


def build_request(host: str, port: int, spec: dict[str, Any]) -> bytes:
    """Raw bytes of one keep-alive HTTP/1.1 request."""
    body = spec.get("body")
    data = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
    headers = {"Host": f"{host}:{port}", "Connection": "keep-alive", **spec.get("headers", {})}
    if body is not None:
        headers.setdefault("Content-Type", "application/json")
        headers["Content-Length"] = str(len(data))
    head = f"{spec.get('method', 'GET')} {spec['path']} HTTP/1.1\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return (head + "\r\n").encode("latin-1") + data


class Connection(asyncio.Protocol):
    """One keep-alive connection; ``request`` sends raw bytes and waits for the status."""

    def __init__(self, keep_body: bool = False) -> None:
        self.transport: Any = None
        self.keep_body = keep_body
        self.body = bytearray()  # the last answer's body, when ``keep_body``
        self.closed = False
        self.used = 0
        self._buf = bytearray()
        self._waiter: asyncio.Future[int] | None = None
        self._status = 0
        self._remaining = -1  # body bytes still to come; -1 while the head is incomplete
        self._close_after = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(HttpError("connection closed"))

    def data_received(self, data: bytes) -> None:
        if self._remaining < 0:
            self._buf += data
            end = self._buf.find(b"\r\n\r\n")
            if end < 0:
                return
            try:
                self._parse_head(bytes(self._buf[:end]))
            except (HttpError, ValueError, IndexError) as exc:
                self._fail(exc)
                return
            extra = len(self._buf) - end - 4
            if self.keep_body:
                self.body = self._buf[end + 4 :]
            self._buf.clear()
        else:
            extra = len(data)
            if self.keep_body:
                self.body += data
        self._remaining -= extra
        if self._remaining <= 0:
            self._done()

    def _parse_head(self, head: bytes) -> None:
        lines = head.split(b"\r\n")
        self._status = int(lines[0].split(b" ", 2)[1])
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                self._close_after = True
            elif name == b"transfer-encoding":
                raise HttpError("chunked answers are not supported by this generator")
        self._remaining = length

    def _fail(self, exc: Exception) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(HttpError(str(exc)))
        self.close()

    def _done(self) -> None:
        self._remaining = -1
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(self._status)
        if self._close_after and self.transport is not None:
            self.transport.close()
            self.closed = True

    async def request(self, raw: bytes) -> int:
        assert self.transport is not None
        self.used += 1
        self._waiter = asyncio.get_running_loop().create_future()
        self.transport.write(raw)
        return await self._waiter

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class Pool:
    """Keep-alive connections, at most ``size``; waiters are served first come, first served."""

    def __init__(self, host: str, port: int, size: int) -> None:
        self.host, self.port, self.size = host, port, size
        self._idle: list[Connection] = []
        self._live: set[Connection] = set()
        self._opening = 0
        self._waiters: deque[asyncio.Future[Connection]] = deque()
        self.opened = 0

    async def _open(self) -> Connection:
        self._opening += 1
        try:
            loop = asyncio.get_running_loop()
            _, conn = await loop.create_connection(Connection, self.host, self.port)
        finally:
            self._opening -= 1
        self.opened += 1
        self._live.add(conn)
        return conn

    async def prefill(self, count: int) -> None:
        count = min(count, self.size) - len(self._live)
        self._idle.extend(await asyncio.gather(*(self._open() for _ in range(max(count, 0)))))

    async def get(self) -> Connection:
        while self._idle:
            conn = self._idle.pop()  # LIFO: the warmest connection first
            if not conn.closed:
                return conn
            self._live.discard(conn)
        if len(self._live) + self._opening < self.size:
            return await self._open()
        future: asyncio.Future[Connection] = asyncio.get_running_loop().create_future()
        self._waiters.append(future)
        return await future

    def put(self, conn: Connection) -> None:
        """Give ``conn`` back; a closed one frees its slot for a new connection."""
        if conn.closed:
            self._live.discard(conn)
            if self._waiters:
                asyncio.ensure_future(self._open_for(self._waiters.popleft()))
            return
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        self._idle.append(conn)

    async def _open_for(self, waiter: asyncio.Future[Connection]) -> None:
        try:
            conn = await self._open()
        except OSError as exc:
            if not waiter.done():
                waiter.set_exception(exc)
            return
        if waiter.done():
            self.put(conn)
        else:
            waiter.set_result(conn)

    def close(self) -> None:
        for conn in list(self._live):
            conn.close()
        for waiter in self._waiters:
            waiter.cancel()


@dataclass
class Run:
    """What one run records; ``summary`` turns it into the JSON answer."""

    latencies: list[float] = field(default_factory=list)
    lags: list[float] = field(default_factory=list)  # send time minus scheduled time
    statuses: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)

    def record(self, latency: float, status: int) -> None:
        self.latencies.append(latency)
        self.statuses[str(status)] += 1
        if not 200 <= status < 400:
            self.errors[f"http_{status}"] += 1

    def fail(self, latency: float, kind: str) -> None:
        self.latencies.append(latency)
        self.errors[kind] += 1


async def one(pool: Pool, raw: bytes, scheduled: float, run: Run, timeout: float) -> None:
    """Send one request (retried once on a keep-alive connection the server just closed)."""
    run.lags.append(time.perf_counter() - scheduled)
    for attempt in range(2):
        conn = await pool.get()
        reused = conn.used > 0
        try:
            status = await asyncio.wait_for(conn.request(raw), timeout)
        except TimeoutError:
            conn.close()
            pool.put(conn)
            run.fail(time.perf_counter() - scheduled, "timeout")
            return
        except (HttpError, OSError) as exc:
            conn.close()
            pool.put(conn)
            if attempt == 0 and reused:
                continue
            run.fail(time.perf_counter() - scheduled, type(exc).__name__)
            return
        run.record(time.perf_counter() - scheduled, status)
        pool.put(conn)
        return


async def open_loop(spec: dict[str, Any], raws: list[bytes], pool: Pool, run: Run) -> float:
    """``rate`` requests/s for ``duration`` s, each timed from its scheduled send time."""
    rate, duration = float(spec["rate"]), float(spec["duration"])
    total = max(1, round(rate * duration))
    timeout = float(spec.get("timeout", 10.0))
    await pool.prefill(int(spec.get("prefill", min(pool.size, 8 + rate * 0.01))))
    cycle = itertools.cycle(raws)
    tasks: list[asyncio.Task[None]] = []
    t0 = time.perf_counter() + 0.01
    sent = 0
    while sent < total:
        now = time.perf_counter()
        due = min(total, int((now - t0) * rate) + 1) if now >= t0 else 0
        while sent < due:
            scheduled = t0 + sent / rate
            tasks.append(asyncio.ensure_future(one(pool, next(cycle), scheduled, run, timeout)))
            sent += 1
        # Timers tick in whole milliseconds: sleeping less would spin the CPU, so requests
        # due within the next millisecond go out together (the lag is in "send_lag_p99_ms").
        await asyncio.sleep(max(MIN_SLEEP, t0 + sent / rate - time.perf_counter()))
    grace = float(spec.get("grace", GRACE_SECONDS))
    done, late = await asyncio.wait(tasks, timeout=grace) if tasks else (set(), set())
    for task in late:
        task.cancel()
    await asyncio.gather(*late, return_exceptions=True)
    for _ in late:
        run.fail(UNFINISHED, "unfinished")
    return time.perf_counter() - t0


async def closed_loop(spec: dict[str, Any], raws: list[bytes], pool: Pool, run: Run) -> float:
    """``concurrency`` clients, each sending its next request as soon as it has an answer."""
    clients = int(spec["concurrency"])
    duration = float(spec.get("duration", 1e9))
    count = int(spec.get("count", 10**9))
    timeout = float(spec.get("timeout", 10.0))
    await pool.prefill(clients)
    cycle = itertools.cycle(raws)
    issued = 0
    t0 = time.perf_counter()
    end = t0 + duration

    async def client() -> None:
        nonlocal issued
        while issued < count and time.perf_counter() < end:
            issued += 1
            await one(pool, next(cycle), time.perf_counter(), run, timeout)

    await asyncio.gather(*(client() for _ in range(clients)))
    return time.perf_counter() - t0


def percentile(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank percentile of an ascending list (``inf`` entries mean no answer)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def _ms(value: float | None) -> float | None:
    return None if value is None or math.isinf(value) else round(value * 1000, 3)


def latency_stats(lat: list[float]) -> dict[str, Any]:
    """Percentiles of an ascending list of latencies in seconds (``inf``: no answer)."""
    finished = [v for v in lat if not math.isinf(v)]
    return {
        "p50_ms": _ms(percentile(lat, 50)),
        "p90_ms": _ms(percentile(lat, 90)),
        "p99_ms": _ms(percentile(lat, 99)),
        "p999_ms": _ms(percentile(lat, 99.9)),
        "max_ms": _ms(lat[-1]) if lat else None,
        "mean_ms": _ms(sum(finished) / len(finished)) if finished else None,
        "p99_unbounded": bool(lat) and math.isinf(percentile(lat, 99) or 0.0),
    }


def summary(run: Run, wall: float, cpu: float, pool: Pool, spec: dict[str, Any]) -> dict[str, Any]:
    lat = sorted(run.latencies)
    ok = sum(n for code, n in run.statuses.items() if 200 <= int(code) < 400)
    answer = {
        "mode": spec["mode"],
        "rate": spec.get("rate"),
        "concurrency": spec.get("concurrency"),
        "requests": len(lat),
        "ok": ok,
        "errors": sum(run.errors.values()),
        "error_kinds": dict(run.errors),
        "statuses": dict(run.statuses),
        "wall_s": round(wall, 3),
        "throughput_rps": round(ok / wall, 1) if wall > 0 else None,
        **latency_stats(lat),
        "send_lag_p99_ms": _ms(percentile(sorted(run.lags), 99)),
        "connections_opened": pool.opened,
        "loadgen_cpu_s": round(cpu, 3),
        "loadgen_cpu_pct": round(100 * cpu / wall, 1) if wall > 0 else None,
    }
    if spec.get("raw"):
        answer["latencies_ms"] = [_ms(v) for v in lat]  # None: no answer
    return answer


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def execute(spec: dict[str, Any]) -> dict[str, Any]:
    host, port = spec.get("host", "127.0.0.1"), int(spec["port"])
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError("the load generator only targets loopback")
    raws = [build_request(host, port, r) for r in spec["requests"]]
    pool = Pool(host, port, int(spec.get("connections", spec.get("concurrency", 64))))
    run = Run()
    cpu0 = _cpu_seconds()
    try:
        driver = open_loop if spec["mode"] == "open" else closed_loop
        wall = await driver(spec, raws, pool, run)
    finally:
        pool.close()
    return summary(run, wall, _cpu_seconds() - cpu0, pool, spec)


def main() -> None:
    """Serve specs from stdin until it closes; one JSON answer line per spec line."""
    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            answer = loop.run_until_complete(execute(json.loads(line)))
        except Exception as exc:  # noqa: BLE001 - reported to the bench, which decides
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()
    loop.close()


if __name__ == "__main__":
    main()
