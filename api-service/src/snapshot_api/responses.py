"""Answers beyond JSON: the PDF download (Starlette's FileResponse on an already open,
verified file, with Range errors as problems) and a task's event stream."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from io import BufferedReader

import anyio
import starlette.responses
from fastapi.responses import FileResponse, StreamingResponse
from starlette.types import Receive, Scope, Send

from snapshot_api.errors import RangeNotSatisfiable
from snapshot_api.services.task_streams import StreamHub, Subscription

PATHSEND = "http.response.pathsend"


class PdfFile(FileResponse):
    """Streams ``file`` (open, verified: ``services.downloads``), never re-opening a path: the
    bytes sent are those of the file that was verified. Closes ``file`` once sent.

    Ignores a malformed ``Range`` (RFC 9110 §14.2 allows it) and sends the whole file, instead
    of Starlette's plain-text 400."""

    def __init__(
        self,
        file: BufferedReader,
        stat_result: os.stat_result,
        headers: Mapping[str, str] | None = None,
        status_code: int = 200,  # FastAPI's OpenAPI reads the default status from here
    ) -> None:
        super().__init__(
            f"/proc/self/fd/{file.fileno()}",  # a name for messages only: never opened
            status_code=status_code,
            headers=headers,
            media_type="application/pdf",
            stat_result=stat_result,
            content_disposition_type="attachment",
        )
        self._file = file

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        extensions = {k: v for k, v in scope.get("extensions", {}).items() if k != PATHSEND}
        try:
            await super().__call__({**scope, "extensions": extensions}, receive, send)
        finally:
            self._file.close()

    @asynccontextmanager
    async def _open_file(self) -> AsyncIterator[anyio.AsyncFile[bytes]]:
        self._file.seek(0)  # each handler seeks where it starts; the whole file starts at 0
        yield anyio.wrap_file(self._file)

    @classmethod
    def _parse_range_header(cls, http_range: str, file_size: int) -> list[tuple[int, int]]:
        try:
            return super()._parse_range_header(http_range, file_size)
        except starlette.responses.MalformedRangeHeader:
            return []


def check_range(http_range: str | None, if_range: str | None, etag: str, size: int) -> None:
    """Raise the 416 problem for a Range the file cannot satisfy (before any byte is sent)."""
    if not http_range or (if_range is not None and if_range != etag):
        return
    try:
        PdfFile._parse_range_header(http_range, size)
    except starlette.responses.RangeNotSatisfiable as exc:
        raise RangeNotSatisfiable(size) from exc


class EventStreamResponse(StreamingResponse):
    """``text/event-stream`` that always leaves the hub, even when the client went away before
    the body started (its generator, never started, would run no ``finally``)."""

    media_type = "text/event-stream"

    def __init__(self, body: AsyncIterator[str], hub: StreamHub, sub: Subscription) -> None:
        super().__init__(
            body,
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )
        self._hub, self._sub = hub, sub

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._hub.close(self._sub)
