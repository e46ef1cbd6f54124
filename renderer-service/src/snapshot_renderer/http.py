"""A tiny HTTP/1.1 server for ``GET /metrics`` and ``GET /healthz`` (no web framework needed)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any

from snapshot_renderer.metrics import render_latest

log = logging.getLogger(__name__)
HealthCheck = Callable[[], Awaitable[tuple[bool, dict[str, Any]]]]
READ_TIMEOUT = 5.0
MAX_HEADER_LINES = 100


class OpsServer:
    """Serves Prometheus metrics and the health check on ``host:port``."""

    def __init__(self, host: str, port: int, health: HealthCheck) -> None:
        self.host = host
        self.port = port
        self._health = health
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        """Listen; with port 0 the kernel picks one and ``self.port`` tells which."""
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("metrics and health on http://%s:%d", self.host, self.port)

    async def close(self) -> None:
        """Stop listening and close open connections."""
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            method, path = await self._read_request(reader)
            status, content_type, body = await self._route(method, path)
            head = (
                f"HTTP/1.1 {status.value} {status.phrase}\r\n"
                f"Content-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\n"
                "Cache-Control: no-store\r\n"
                "Connection: close\r\n\r\n"
            )
            writer.write(head.encode("latin-1") + (b"" if method == "HEAD" else body))
            await writer.drain()
        except (TimeoutError, ConnectionError, ValueError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _read_request(self, reader: asyncio.StreamReader) -> tuple[str, str]:
        """The method and path of the request line; headers are read and ignored."""
        line = await asyncio.wait_for(reader.readline(), READ_TIMEOUT)
        method, target, _version = line.decode("latin-1").split(" ", 2)
        for _ in range(MAX_HEADER_LINES):
            header = await asyncio.wait_for(reader.readline(), READ_TIMEOUT)
            if header in (b"\r\n", b"\n", b""):
                break
        return method.upper(), target.split("?", 1)[0]

    async def _route(self, method: str, path: str) -> tuple[HTTPStatus, str, bytes]:
        if path not in ("/metrics", "/healthz"):
            return HTTPStatus.NOT_FOUND, "text/plain; charset=utf-8", b"not found\n"
        if method not in ("GET", "HEAD"):
            return HTTPStatus.METHOD_NOT_ALLOWED, "text/plain; charset=utf-8", b"use GET\n"
        if path == "/metrics":
            body, content_type = render_latest()
            return HTTPStatus.OK, content_type, body
        healthy, details = await self._health()
        status = HTTPStatus.OK if healthy else HTTPStatus.SERVICE_UNAVAILABLE
        body = json.dumps({"status": "ok" if healthy else "unavailable", **details}).encode()
        return status, "application/json", body
