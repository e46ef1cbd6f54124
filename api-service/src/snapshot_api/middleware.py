"""Pure ASGI middleware: request ids, logging context, metrics, and the body size limit."""

from __future__ import annotations

import logging
import re
import time
import uuid

from snapshot_shared.logging import bound, escape_control
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from snapshot_api.errors import BodyTooLarge
from snapshot_api.metrics import PROBLEMS, REQUEST_SECONDS

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
# Observability: metric labels stay bounded; probes and scrapes are logged at DEBUG only.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})
log = logging.getLogger("snapshot_api.access")


class RequestContextMiddleware:
    """Sets ``X-Request-ID`` (kept from the request when sane), binds it to logs, times the call."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500
        raw_id = request_id.encode()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", raw_id)]
            await send(message)

        started = time.perf_counter()
        try:
            with bound(request_id=request_id):
                await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope["method"] if scope["method"] in _METHODS else "other"
            REQUEST_SECONDS.labels(method, template, f"{status // 100}xx").observe(elapsed)
            log.log(
                logging.DEBUG if template in _QUIET_ROUTES else logging.INFO,
                "%s %s %d",
                escape_control(scope["method"]),
                escape_control(scope.get("path", "")),  # percent-decoded: may hold CR/LF
                status,
                extra={
                    "request_id": request_id,
                    "route": template,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                },
            )


class BodyLimitMiddleware:
    """Refuses bodies over ``max_bytes`` with a 413 problem, by Content-Length and while
    reading a chunked upload; the app then gets the (bounded) body replayed."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope["headers"]) if scope["type"] == "http" else {}
        length = headers.get(b"content-length")
        chunked = b"chunked" in headers.get(b"transfer-encoding", b"").lower()
        if scope["type"] != "http" or (length is None and not chunked):
            await self.app(scope, receive, send)
            return
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await self._refuse(scope, receive, send)
            return
        chunks: list[bytes] = []
        total = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            total += len(chunk)
            if total > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        err = BodyTooLarge(f"Request bodies are limited to {self.max_bytes} bytes")
        PROBLEMS.labels(code=err.code).inc()
        body = {
            "type": f"/problems/{err.code}",
            "title": err.title,
            "status": err.status,
            "code": err.code,
            "detail": err.detail,
            "instance": scope.get("path"),
            "request_id": scope.get("state", {}).get("request_id"),
            "limit": self.max_bytes,
        }
        response = JSONResponse(
            body,
            status_code=err.status,
            media_type="application/problem+json",
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)
