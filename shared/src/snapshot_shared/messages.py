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

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator, model_validator

from snapshot_shared import limits
from snapshot_shared.limits import SnapshotLimits

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
    timezone: Annotated[str, Field(min_length=1, max_length=limits.TIMEZONE_CHARS)] = "UTC"
    title: Annotated[str, Field(max_length=limits.TITLE_CHARS)] | None = None
    locale: Annotated[
        str,
        Field(
            min_length=2,
            max_length=limits.LOCALE_CHARS,
            pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$",
            description="A BCP 47 language tag such as en, de-CH or zh-Hant-TW",
        ),
    ] = "en"

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value


UserId = Annotated[str, Field(max_length=limits.USER_ID_CHARS)]
DisplayName = Annotated[str, Field(max_length=limits.WIRE_NAME_CHARS)]
Short = Annotated[str, Field(max_length=64)]  # codes, phases, roles, kinds, templates
# Error messages and ids the services write themselves; generous, only a bound.
Text = Annotated[str, Field(max_length=4096)]


class PayloadRoom(WireModel):
    id: UUID
    name: Annotated[str, Field(max_length=limits.ROOM_NAME_CHARS)]
    created_at: dt.datetime


class PayloadMember(WireModel):
    user_id: UserId
    display_name: DisplayName
    role: Short
    joined_at: dt.datetime


class PayloadMessage(WireModel):
    id: UUID
    author_id: UserId
    author_name: DisplayName
    created_at: dt.datetime
    # Characters: a UTF-8 byte bound implies this one (the API checks the bytes).
    body: Annotated[str, Field(max_length=limits.MESSAGE_BYTES)]
    kind: Annotated[str, Field(max_length=limits.KIND_CHARS)] = "message"
    # The message's place in its room's timeline and the room's chunk it belongs to
    # (``snapshot_shared.chunking``), the same in every snapshot of the room, scoped or not.
    # Payloads frozen before the API stored them (migration 0009) carry neither.
    ordinal: Annotated[int, Field(ge=0)] | None = None
    chunk: Annotated[int, Field(ge=0)] | None = None


class SnapshotPayload(WireModel):
    """The frozen room data of a snapshot, exactly what the scope allows."""

    room: PayloadRoom
    sections: list[Section]
    members: list[PayloadMember] = []
    messages: list[PayloadMessage] = []
    as_of: dt.datetime | None = None

    @model_validator(mode="after")
    def _timeline_order(self) -> SnapshotPayload:
        """Messages carry an ordinal and a chunk each, or none do; in timeline order if so."""
        places = [(m.ordinal, m.chunk) for m in self.messages]
        known = [(o, c) for o, c in places if o is not None and c is not None]
        if len(known) != len(places) and any(o is not None or c is not None for o, c in places):
            raise ValueError("messages carry an ordinal and a chunk each, or none of them")
        for (ordinal, chunk), (next_ordinal, next_chunk) in zip(known, known[1:], strict=False):
            if next_ordinal <= ordinal or next_chunk < chunk:
                raise ValueError(
                    "messages must be in timeline order: increasing ordinals, chunks that never"
                    f" go back (ordinal {next_ordinal}, chunk {next_chunk} follows ordinal"
                    f" {ordinal}, chunk {chunk})"
                )
        return self


class RenderJob(WireModel):
    schema_version: Literal[1] = 1
    task_id: UUID
    snapshot_id: UUID
    content_hash: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    template: Annotated[str, Field(max_length=limits.TEMPLATE_CHARS)] = DEFAULT_TEMPLATE
    options: dict[str, Any]
    payload: dict[str, Any]
    requested_at: dt.datetime
    request_id: Annotated[str, Field(max_length=limits.REQUEST_ID_CHARS)] | None = None
    deadline: dt.datetime | None = None
    verify_store: bool = False  # the API found the stored PDF missing or damaged
    # Who asked (the snapshot's ``requested_by``): renderers share their workers fairly
    # among users. Optional (jobs of older APIs carry none); never part of a content hash.
    requested_by: UserId | None = None
    # Which formula ``content_hash`` follows (``snapshot_shared.hashing``): 1, over the whole
    # payload (jobs of older APIs, and re-renders of snapshots created before sealed chunks,
    # carry none), or 2, over the chain of the payload's chunk digests.
    hash_version: Literal[1, 2] = 1


class Artifact(WireModel):
    key: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    bytes: int
    pages: int
    pdf_sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class EventError(WireModel):
    code: Short
    message: Text
    retryable: bool = False


class StatusEvent(WireModel):
    schema_version: Literal[1] = 1
    task_id: UUID
    snapshot_id: UUID
    event: EventName
    progress: Annotated[int, Field(ge=0, le=100)] = 0
    phase: Short | None = None
    cache: CacheOutcome | None = None
    artifact: Artifact | None = None
    render_ms: float | None = None
    error: EventError | None = None
    renderer_id: Text | None = None
    attempt: Annotated[int, Field(ge=1)] | None = None
    at: dt.datetime
    # A render in pieces (DESIGN §6): how many of the snapshot's pieces are ready, of how many.
    # Optional (a whole-document render, a cache hit and older renderers send neither).
    pieces_done: Annotated[int, Field(ge=0)] | None = None
    pieces_total: Annotated[int, Field(ge=0)] | None = None

    @model_validator(mode="after")
    def _pieces_within_total(self) -> StatusEvent:
        done, total = self.pieces_done, self.pieces_total
        if done is not None and total is not None and done > total:
            raise ValueError(f"pieces_done ({done}) is more than pieces_total ({total})")
        return self


class MessageDecodeError(ValueError):
    """A message body that is not a valid model of this schema version."""


class JobOverLimits(MessageDecodeError):
    """A render job whose snapshot is over the per-snapshot limits (never retried)."""


_JOB = TypeAdapter(RenderJob)
_EVENT = TypeAdapter(StatusEvent)


def encode(model: BaseModel, gzip_threshold: int | None = None) -> tuple[bytes, str | None]:
    """JSON bytes of ``model``, gzip-compressed when larger than ``gzip_threshold``."""
    body = model.model_dump_json().encode("utf-8")
    if gzip_threshold is not None and len(body) > gzip_threshold:
        return gzip.compress(body, compresslevel=1, mtime=0), GZIP
    return body, None


_PAYLOAD_SLOT = b'"payload":{}'


def encode_job(
    job: RenderJob,
    canonical_payload: bytes,
    gzip_threshold: int | None = None,
    payload_gzip: bytes | None = None,
) -> tuple[bytes, str | None]:
    """JSON bytes of ``job`` carrying ``canonical_payload`` (canonical JSON of the payload; the
    model's own ``payload`` must be empty), spliced in without serializing it again.

    Above ``gzip_threshold`` the body is gzip in three members: the envelope's head, the
    payload, the envelope's tail. ``payload_gzip`` (gzip of exactly ``canonical_payload``, as
    stored with the snapshot) is reused as the middle member, so the payload is compressed once.
    """
    if job.payload:
        raise ValueError("encode_job takes the payload as canonical bytes, not in the model")
    head, tail = envelope_frame(job.model_dump_json().encode("utf-8"))
    if gzip_threshold is None or len(head) + len(canonical_payload) + len(tail) <= gzip_threshold:
        return head + canonical_payload + tail, None
    if payload_gzip is None:
        payload_gzip = gzip.compress(canonical_payload, compresslevel=1, mtime=0)
    head_gz = gzip.compress(head, compresslevel=1, mtime=0)
    return head_gz + payload_gzip + gzip.compress(tail, compresslevel=1, mtime=0), GZIP


def envelope_frame(envelope: bytes) -> tuple[bytes, bytes]:
    """A job serialized with an empty payload (``"payload":{}``), cut where the payload goes:
    ``head + payload + tail`` is the job carrying that payload."""
    # The slot is found exactly once: a quote inside any JSON string is escaped as \".
    head, slot, tail = envelope.partition(_PAYLOAD_SLOT)
    if not slot or _PAYLOAD_SLOT in tail:
        raise ValueError("no unique payload slot in the serialized job")
    return head + b'"payload":', tail


def splice_job(
    envelope: bytes,
    before: bytes,
    middle: list[bytes],
    after: bytes,
    gzip_threshold: int | None = None,
    payload_bytes: int | None = None,
) -> tuple[bytes, str | None]:
    """The body of the job ``envelope`` (a job serialized with an empty payload) carrying the
    payload whose canonical bytes are ``before``, the contents of the gzip members ``middle``
    and ``after``; ``payload_bytes`` is their total length.

    Above ``gzip_threshold`` the body is gzip: a member of the envelope's head with
    ``before``, the ``middle`` members as they are, a member of ``after`` with the envelope's
    tail; nothing in ``middle`` is decompressed. At or below it, the plain JSON."""
    head, tail = envelope_frame(envelope)
    size = len(head) + len(tail) + (payload_bytes if payload_bytes is not None else 2**62)
    if gzip_threshold is not None and size <= gzip_threshold:
        inner = inflate(b"".join(middle), GZIP, size) if middle else b""
        return head + before + inner + after + tail, None
    first = gzip.compress(head + before, compresslevel=1, mtime=0)
    last = gzip.compress(after + tail, compresslevel=1, mtime=0)
    return b"".join([first, *middle, last]), GZIP


def inflate(body: bytes, encoding: str | None, max_bytes: int) -> bytes:
    """The body as plain bytes: gunzipped when ``encoding`` says so, never past ``max_bytes``.

    A gzip body may hold several members (RFC 1952 §2.2); their contents are concatenated.
    """
    if encoding in (None, "", "identity"):
        if len(body) > max_bytes:
            raise MessageDecodeError("message body too large")
        return body
    if encoding != GZIP:
        raise MessageDecodeError(f"unsupported content encoding {encoding!r}")
    out = bytearray()
    rest = body
    while True:
        inflater = zlib.decompressobj(wbits=31)
        try:
            out += inflater.decompress(rest, max_bytes + 1 - len(out))
        except zlib.error as exc:
            raise MessageDecodeError("corrupt gzip body") from exc
        if len(out) > max_bytes or inflater.unconsumed_tail:
            raise MessageDecodeError("message body too large once decompressed")
        if not inflater.eof:
            raise MessageDecodeError("truncated gzip body")
        rest = inflater.unused_data
        if not rest:
            return bytes(out)


def decode_job(
    body: bytes,
    encoding: str | None = None,
    max_bytes: int = 256 * 2**20,
    snapshot_limits: SnapshotLimits | None = None,
) -> RenderJob:
    """The job in ``body``; with ``snapshot_limits``, a job over them is ``JobOverLimits``."""
    try:
        job = _JOB.validate_json(inflate(body, encoding, max_bytes))
    except ValueError as exc:
        if isinstance(exc, MessageDecodeError):
            raise
        raise MessageDecodeError(str(exc)) from exc
    if snapshot_limits is not None and (problem := _over_limits(job.payload, snapshot_limits)):
        raise JobOverLimits(f"snapshot_too_large: {problem}")
    return job


def _over_limits(payload: dict[str, Any], snapshot_limits: SnapshotLimits) -> str | None:
    messages = payload.get("messages")
    members = payload.get("members")
    bodies = [
        m["body"]
        for m in (messages if isinstance(messages, list) else [])
        if isinstance(m, dict) and isinstance(m.get("body"), str)
    ]
    return snapshot_limits.problem(bodies, len(members) if isinstance(members, list) else 0)


def decode_event(body: bytes, encoding: str | None = None) -> StatusEvent:
    try:
        return _EVENT.validate_json(inflate(body, encoding, 2**20))
    except ValueError as exc:
        if isinstance(exc, MessageDecodeError):
            raise
        raise MessageDecodeError(str(exc)) from exc
