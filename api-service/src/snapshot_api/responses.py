"""Answers beyond JSON: the PDF download (Starlette's FileResponse, with Range errors as
problems) and a task's event stream."""

from __future__ import annotations

from collections.abc import AsyncIterator

import starlette.responses
from fastapi.responses import FileResponse, StreamingResponse
from starlette.types import Receive, Scope, Send

from snapshot_api.errors import RangeNotSatisfiable
from snapshot_api.services.task_streams import StreamHub, Subscription


class PdfFile(FileResponse):
    """Ignores a malformed ``Range`` (RFC 9110 §14.2 allows it) and sends the whole file,
    instead of Starlette's plain-text 400."""

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
