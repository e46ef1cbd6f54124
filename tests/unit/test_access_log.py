"""The API's access log line for a request whose (percent-decoded) path holds CR/LF and other
control characters stays one line: the path is escaped, not written raw. The real middleware
around a small ASGI app; no services needed."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from snapshot_api.middleware import RequestContextMiddleware
from snapshot_shared.logging import setup_logging


@pytest.fixture(autouse=True)
def restore_logging():
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        yield
    finally:
        root.handlers[:], root.level = saved


async def not_found(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 404, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def request(path: str, method: str = "GET") -> list[dict[str, Any]]:
    """Run one request through the middleware; the messages the client would receive."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "headers": [], "state": {}}
    asyncio.run(RequestContextMiddleware(not_found)(scope, receive, send))
    return sent


# What uvicorn puts in scope["path"] for GET /rooms/1%0D%0A12:00:00%20INFO...%1B[2J
FORGED_PATH = "/rooms/1\r\n12:00:00 INFO    snapshot_api.access: GET /api/v1/audit 200\x1b[2J"


def test_access_log_escapes_cr_lf_in_the_request_path(capsys):
    setup_logging("INFO", "console")
    sent = request(FORGED_PATH)
    assert sent[0]["status"] == 404
    err = capsys.readouterr().err
    lines = [line for line in err.split("\n") if line]
    assert len(lines) == 1, err  # no forged second line
    assert "snapshot_api.access: GET /rooms/1\\x0d\\x0a12:00:00 INFO" in lines[0]
    assert "/api/v1/audit 200\\x1b[2J 404" in lines[0]
    assert "\r" not in err and "\x1b" not in err


def test_access_log_in_json_is_one_line_with_the_escaped_path(capsys):
    import json

    setup_logging("INFO", "json")
    request(FORGED_PATH)
    (line,) = capsys.readouterr().err.splitlines()
    record = json.loads(line)
    assert record["logger"] == "snapshot_api.access" and record["status"] == 404
    assert record["event"].startswith("GET /rooms/1\\x0d\\x0a12:00:00 INFO")
