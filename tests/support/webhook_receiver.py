"""A webhook receiver on 127.0.0.1 (http.server in a thread) for webhook tests and the bench.

It records every request (path, headers, body, arrival time) and answers the next status
from ``plan`` (204 once the plan is used up). ``stop()`` closes its socket, so senders see a
refused connection, and ``start()`` listens on the same port again: a receiver outage.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.time() on arrival
    answered: int

    def verify(self, secret: str) -> Any:
        """The parsed event, if the signature verifies with ``secret`` (standardwebhooks)."""
        return Webhook(secret).verify(self.body, self.headers)


@dataclass
class Receiver:
    port: int = 0
    plan: deque[int] = field(default_factory=deque)
    received: list[Received] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/snapshots"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver._lock:
                    code = receiver.plan.popleft() if receiver.plan else 204
                    receiver.received.append(
                        Received(self.path, _lower(self.headers), body, time.time(), code)
                    )
                self.send_response(code)
                if 300 <= code < 400:
                    self.send_header("Location", "/redirected")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def of(self, delivery_id: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.headers.get("webhook-id") == delivery_id]

    def count(self) -> int:
        with self._lock:
            return len(self.received)


def _lower(headers: Any) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}
