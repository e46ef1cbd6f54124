"""Versioned wire models (DESIGN §5): JSON on the wire, gzip for large bodies, no pickle.

Within ``SCHEMA_VERSION`` only additive changes are allowed; readers ignore nothing silently:
an unknown ``schema_version`` is refused.
"""

from __future__ import annotations

import datetime as dt
import gzip
import zlib
import zoneinfo
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator

SCHEMA_VERSION = 1
GZIP = "gzip"
DEFAULT_TEMPLATE = "snapshot"

PageSize = Literal["A4", "Letter"]
Section = Literal["members", "messages"]
CacheOutcome = Literal["memory", "disk", "miss"]
EventName = Literal["started", "progress", "completed", "failed"]


class WireModel(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class RenderOptions(BaseModel):
    """How the PDF looks; part of the content hash."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    page_size: PageSize = "A4"
    timezone: str = "UTC"
    title: Annotated[str, Field(max_length=200)] | None = None
    locale: Annotated[str, Field(pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$")] = "en"

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value


class PayloadRoom(WireModel):
    id: UUID
    name: str
    created_at: dt.datetime


class PayloadMember(WireModel):
    user_id: str
    display_name: str
    role: str
    joined_at: dt.datetime


class PayloadMessage(WireModel):
    id: UUID
    author_id: str
    author_name: str
    created_at: dt.datetime
    body: str
    kind: str = "message"


class SnapshotPayload(WireModel):
    """The frozen room data of a snapshot, exactly what the scope allows."""

    room: PayloadRoom
    sections: list[Section]
    members: list[PayloadMember] = []
    messages: list[PayloadMessage] = []
    as_of: dt.datetime | None = None


class RenderJob(WireModel):
    schema_version: Literal[1] = 1
    task_id: UUID
    snapshot_id: UUID
    content_hash: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    template: str = DEFAULT_TEMPLATE
    options: dict[str, Any]
    payload: dict[str, Any]
    requested_at: dt.datetime
    request_id: str | None = None
    deadline: dt.datetime | None = None
    verify_store: bool = False  # the API found the stored PDF missing or damaged


class Artifact(WireModel):
    key: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    bytes: int
    pages: int
    pdf_sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class EventError(WireModel):
    code: str
    message: str
    retryable: bool = False


class StatusEvent(WireModel):
    schema_version: Literal[1] = 1
    task_id: UUID
    snapshot_id: UUID
    event: EventName
    progress: Annotated[int, Field(ge=0, le=100)] = 0
    phase: str | None = None
    cache: CacheOutcome | None = None
    artifact: Artifact | None = None
    render_ms: float | None = None
    error: EventError | None = None
    renderer_id: str | None = None
    attempt: Annotated[int, Field(ge=1)] | None = None
    at: dt.datetime


class MessageDecodeError(ValueError):
    """A message body that is not a valid model of this schema version."""


_JOB = TypeAdapter(RenderJob)
_EVENT = TypeAdapter(StatusEvent)


def encode(model: BaseModel, gzip_threshold: int | None = None) -> tuple[bytes, str | None]:
    """JSON bytes of ``model``, gzip-compressed when larger than ``gzip_threshold``."""
    body = model.model_dump_json().encode("utf-8")
    if gzip_threshold is not None and len(body) > gzip_threshold:
        return gzip.compress(body, compresslevel=1, mtime=0), GZIP
    return body, None


def inflate(body: bytes, encoding: str | None, max_bytes: int) -> bytes:
    """The body as plain bytes: gunzipped when ``encoding`` says so, never past ``max_bytes``."""
    if encoding in (None, "", "identity"):
        if len(body) > max_bytes:
            raise MessageDecodeError("message body too large")
        return body
    if encoding != GZIP:
        raise MessageDecodeError(f"unsupported content encoding {encoding!r}")
    inflater = zlib.decompressobj(wbits=31)
    try:
        data = inflater.decompress(body, max_bytes + 1)
    except zlib.error as exc:
        raise MessageDecodeError("corrupt gzip body") from exc
    if len(data) > max_bytes or inflater.unconsumed_tail:
        raise MessageDecodeError("message body too large once decompressed")
    return data


def decode_job(body: bytes, encoding: str | None = None, max_bytes: int = 256 * 2**20) -> RenderJob:
    try:
        return _JOB.validate_json(inflate(body, encoding, max_bytes))
    except ValueError as exc:
        if isinstance(exc, MessageDecodeError):
            raise
        raise MessageDecodeError(str(exc)) from exc


def decode_event(body: bytes, encoding: str | None = None) -> StatusEvent:
    try:
        return _EVENT.validate_json(inflate(body, encoding, 2**20))
    except ValueError as exc:
        if isinstance(exc, MessageDecodeError):
            raise
        raise MessageDecodeError(str(exc)) from exc
