"""The renderer's ``/healthz`` and ``/metrics`` server, over real loopback HTTP (no broker)."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from snapshot_renderer.http import OpsServer
from snapshot_renderer.metrics import render_latest


class FakeHealth:
    """The service's health check, switchable; counts its calls."""

    def __init__(self) -> None:
        self.healthy = True
        self.calls = 0

    async def __call__(self) -> tuple[bool, dict[str, Any]]:
        self.calls += 1
        return self.healthy, {"renderer_id": "unit", "consuming": self.healthy}


@pytest.fixture(autouse=True)
def restore_uvicorn_loggers() -> Iterator[None]:
    """uvicorn's config switches its access logger off process-wide; put it back after."""
    saved = {
        name: (lg.handlers[:], lg.level, lg.propagate)
        for name in ("uvicorn.access", "uvicorn.error")
        for lg in [logging.getLogger(name)]
    }
    yield
    for name, (handlers, level, propagate) in saved.items():
        lg = logging.getLogger(name)
        lg.handlers[:], lg.level, lg.propagate = handlers, level, propagate


@pytest.fixture
def health() -> FakeHealth:
    return FakeHealth()


@pytest.fixture
async def ops(health: FakeHealth) -> AsyncIterator[OpsServer]:
    server = OpsServer("127.0.0.1", 0, health)
    await server.start()
    try:
        yield server
    finally:
        await server.close()


@pytest.fixture
async def client(ops: OpsServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{ops.port}") as c:
        yield c


async def raw_exchange(port: int, data: bytes) -> bytes:
    """Send ``data`` on one connection and read until the server closes it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        return await reader.read()
    finally:
        writer.close()


async def test_health_is_200_when_healthy_and_503_otherwise(
    client: httpx.AsyncClient, health: FakeHealth
) -> None:
    ok = await client.get("/healthz")
    health.healthy = False
    down = await client.get("/healthz")

    assert ok.status_code == 200 and down.status_code == 503
    assert ok.headers["content-type"] == "application/json"
    assert ok.json() == {"status": "ok", "renderer_id": "unit", "consuming": True}
    assert down.json() == {"status": "unavailable", "renderer_id": "unit", "consuming": False}
    assert ok.headers["cache-control"] == down.headers["cache-control"] == "no-store"
    assert health.calls == 2


async def test_metrics_are_prometheus_text_with_its_content_type(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"] == render_latest()[1]
    assert response.headers["cache-control"] == "no-store"
    names = {family.name for family in text_string_to_metric_families(response.text)}
    assert "snapshot_renderer_jobs_in_flight" in names
    assert "snapshot_renderer_cache_requests" in names  # the parser drops ``_total``


async def test_other_paths_are_404_other_methods_405_and_head_has_no_body(
    client: httpx.AsyncClient, health: FakeHealth
) -> None:
    assert (await client.get("/nope")).status_code == 404
    assert (await client.get("/")).status_code == 404
    assert (await client.get("/metrics/extra")).status_code == 404
    for path in ("/metrics", "/healthz"):
        refused = await client.post(path, content=b"x")
        assert refused.status_code == 405, path
        assert "GET" in refused.headers["allow"]
    head = await client.head("/healthz")
    assert head.status_code == 200 and head.content == b""
    assert (await client.get("/healthz?verbose=1")).status_code == 200
    assert health.calls == 2  # HEAD and the query-string GET; refused requests never ask


async def test_a_malformed_request_gets_400_and_the_server_keeps_serving(
    ops: OpsServer, client: httpx.AsyncClient
) -> None:
    answer = await raw_exchange(ops.port, b"\x00\x01 garbage\r\n\r\n")

    assert answer.startswith(b"HTTP/1.1 400 ")
    assert (await client.get("/healthz")).status_code == 200


async def test_two_requests_on_one_keep_alive_connection_are_both_answered(
    ops: OpsServer, health: FakeHealth
) -> None:
    requests = (
        b"GET /healthz HTTP/1.1\r\nHost: ops\r\n\r\n"
        b"GET /healthz HTTP/1.1\r\nHost: ops\r\nConnection: close\r\n\r\n"
    )
    answer = await raw_exchange(ops.port, requests)

    assert answer.count(b"HTTP/1.1 200 OK\r\n") == 2
    assert health.calls == 2


async def test_port_zero_picks_a_free_port_and_a_taken_port_fails_start(
    ops: OpsServer, health: FakeHealth
) -> None:
    assert ops.port != 0
    second = OpsServer("127.0.0.1", ops.port, health)
    with pytest.raises(OSError):
        await second.start()
    await second.close()  # nothing to close; must not raise


async def test_signal_handlers_stay_the_services(health: FakeHealth) -> None:
    """``main`` handles SIGTERM/SIGINT itself; the server must not take them over."""
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    server = OpsServer("127.0.0.1", 0, health)
    await server.start()
    try:
        async with httpx.AsyncClient() as c:
            assert (await c.get(f"http://127.0.0.1:{server.port}/healthz")).status_code == 200
        during = {sig: signal.getsignal(sig) for sig in before}
    finally:
        await server.close()
    after = {sig: signal.getsignal(sig) for sig in before}

    assert during == before and after == before


async def test_requests_are_logged_at_debug_only(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    # pytest attaches its capture handlers to loggers that don't propagate, as uvicorn's config
    # leaves ``uvicorn.access`` (access_log=False); in the renderer it has none: as there, here.
    logging.getLogger("uvicorn.access").handlers.clear()
    caplog.set_level(logging.INFO)
    await client.get("/metrics")
    await client.get("/healthz")
    quiet = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]

    caplog.clear()
    caplog.set_level(logging.DEBUG)
    await client.get("/metrics")
    await client.get("/nope")
    logged = [r.getMessage() for r in caplog.records if not r.name.startswith(("httpx", "httpc"))]

    assert quiet == []
    assert logged == ["GET /metrics 200", "GET /nope 404"]


async def test_close_stops_listening(health: FakeHealth) -> None:
    server = OpsServer("127.0.0.1", 0, health)
    await server.start()
    port = server.port
    async with httpx.AsyncClient() as c:
        assert (await c.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200
    await server.close()

    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)
