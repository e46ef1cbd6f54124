"""``GET /metrics`` and ``GET /healthz``: a small Starlette app on uvicorn, in the service's loop.

uvicorn parses HTTP/1.1 (h11 or httptools) and Starlette routes: anything but these two paths is
404, any method but GET/HEAD on them 405. The server runs as a task of the renderer's own event
loop and never installs signal handlers: ``main.py`` handles SIGTERM/SIGINT and stops the
service, which closes this server. The listening socket is bound here, so a port in use raises
``OSError`` from ``start`` (uvicorn would ``sys.exit``) and port 0 tells its pick in ``port``.
Requests are logged at DEBUG only, so scrapes and probes add no log lines otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from snapshot_renderer.metrics import render_latest

log = logging.getLogger(__name__)
HealthCheck = Callable[[], Awaitable[tuple[bool, dict[str, Any]]]]
NO_STORE = {"Cache-Control": "no-store"}
CLOSE_TIMEOUT = 2  # open requests get this long to finish once the service stops


def build_app(health: HealthCheck) -> ASGIApp:
    """The ops app: ``/metrics`` in Prometheus text format, ``/healthz`` as JSON (200 or 503)."""

    async def metrics(_request: Request) -> Response:
        body, content_type = render_latest()
        return Response(body, media_type=content_type, headers=NO_STORE)

    async def healthz(_request: Request) -> Response:
        healthy, details = await health()
        body = {"status": "ok" if healthy else "unavailable", **details}
        return JSONResponse(body, status_code=200 if healthy else 503, headers=NO_STORE)

    routes = [
        Route("/metrics", metrics, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
    ]
    return _DebugRequestLog(Starlette(routes=routes))  # GET routes answer HEAD too


class _DebugRequestLog:
    """Logs ``method path status`` of each request, at DEBUG (no uvicorn access log)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not log.isEnabledFor(logging.DEBUG):
            await self.app(scope, receive, send)
            return

        async def send_logged(message: Message) -> None:
            if message["type"] == "http.response.start":
                log.debug("%s %s %d", scope["method"], scope["path"], message["status"])
            await send(message)

        await self.app(scope, receive, send_logged)


class _EmbeddedServer(uvicorn.Server):
    """A uvicorn server for a task in someone else's loop: no signal handlers, and an event
    set once it accepts connections."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the renderer's main() owns SIGTERM/SIGINT; uvicorn must not take them over

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.ready.set()


class OpsServer:
    """Serves Prometheus metrics and the health check on ``host:port``."""

    def __init__(self, host: str, port: int, health: HealthCheck) -> None:
        self.host = host
        self.port = port
        self._health = health
        self._server: _EmbeddedServer | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Listen; with port 0 the kernel picks one and ``self.port`` tells which."""
        sock = await self._bind()
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            build_app(self._health),
            lifespan="off",
            log_config=None,  # keep the service's logging setup
            log_level=None,
            access_log=False,
            ws="none",
            proxy_headers=False,
            timeout_graceful_shutdown=CLOSE_TIMEOUT,
        )
        server = self._server = _EmbeddedServer(config)
        self._task = asyncio.create_task(server.serve(sockets=[sock]), name="ops-server")
        ready = asyncio.create_task(server.ready.wait())
        await asyncio.wait({self._task, ready}, return_when=asyncio.FIRST_COMPLETED)
        if not server.ready.is_set():
            ready.cancel()
            sock.close()
            await self._task  # raises what stopped it
            raise RuntimeError("the metrics and health server stopped while starting")
        log.info("metrics and health on http://%s:%d", self.host, self.port)

    async def _bind(self) -> socket.socket:
        infos = await asyncio.get_running_loop().getaddrinfo(
            self.host, self.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
        family, *_, address = infos[0]
        return socket.create_server(address, family=family)

    async def close(self) -> None:
        """Stop listening, let open requests finish (bounded), close the connections."""
        server, task, self._server, self._task = self._server, self._task, None, None
        if server is None or task is None:
            return
        server.should_exit = True
        try:
            await asyncio.wait_for(task, CLOSE_TIMEOUT + 3)
        except Exception:  # noqa: BLE001 - stopping anyway; say why
            log.warning("the metrics and health server did not stop cleanly", exc_info=True)
