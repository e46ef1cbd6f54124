"""The PDF download answer: Starlette's FileResponse, with Range errors as problems."""

from __future__ import annotations

import starlette.responses
from fastapi.responses import FileResponse

from snapshot_api.errors import RangeNotSatisfiable


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
