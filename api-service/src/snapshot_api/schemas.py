"""Request and response bodies of the HTTP API (unknown request fields are rejected)."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from snapshot_shared import limits
from snapshot_shared.messages import RenderOptions, Section

from snapshot_api.text import check_line, text_problem
from snapshot_api.webhooks.urls import MAX_URL_CHARS

Role = Literal["owner", "editor", "viewer"]
Kind = Literal["message", "note", "decision"]
MAX_BODY_BYTES = limits.MESSAGE_BYTES
FIRST_YEAR, LAST_YEAR = 1970, 2099
# The same rules as text.py, written as patterns so the OpenAPI schema states them too.
_LINE_CHAR = r"[^\x00-\x1f\x7f-\x9f\u2028\u2029]"
Line = Annotated[str, StringConstraints(pattern=f"^{_LINE_CHAR}*$"), AfterValidator(check_line)]
NonBlankLine = Annotated[
    str,
    StringConstraints(pattern=rf"^{_LINE_CHAR}*[^\s\x00-\x1f\x7f-\x9f]{_LINE_CHAR}*$"),
    AfterValidator(check_line),
]
Timestamp = Annotated[
    AwareDatetime,
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            "pattern": r"^(19[7-9][0-9]|20[0-9][0-9])-",
            "description": f"RFC 3339 date-time with a zone, years {FIRST_YEAR}–{LAST_YEAR}",
        }
    ),
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RoomCreate(Strict):
    name: Annotated[NonBlankLine, Field(min_length=1, max_length=limits.ROOM_NAME_CHARS)]

    @field_validator("name")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("name must not be blank")
        return value.strip()


class MemberPut(Strict):
    role: Role
    display_name: (
        Annotated[Line, Field(min_length=1, max_length=limits.DISPLAY_NAME_CHARS)] | None
    ) = None


class MessageIn(Strict):
    body: Annotated[
        str,
        Field(
            min_length=1,
            max_length=MAX_BODY_BYTES,
            # In the schema only, so that the validator below names what is wrong.
            json_schema_extra={"pattern": limits.BODY_PATTERN},
            description=(
                f"Plain text: at most {MAX_BODY_BYTES} bytes of UTF-8 and"
                f" {limits.MESSAGE_LINE_BREAKS} line breaks (CR LF, LF or CR); no control"
                " characters other than tab, CR and LF, no U+2028/U+2029"
            ),
        ),
    ]
    kind: Kind = "message"

    @field_validator("body")
    @classmethod
    def _size_in_bytes(cls, value: str) -> str:
        if problem := text_problem(value) or limits.body_problem(value):
            raise ValueError(f"body {problem}")
        return value


class MessageBatch(Strict):
    messages: Annotated[list[MessageIn], Field(min_length=1, max_length=500)]


def _message_shape(value: Any) -> str:
    return "batch" if isinstance(value, dict) and "messages" in value else "single"


MessagePost = Annotated[
    Annotated[MessageIn, Tag("single")] | Annotated[MessageBatch, Tag("batch")],
    Discriminator(_message_shape),
]


class SnapshotScope(Strict):
    from_: Annotated[Timestamp | None, Field(alias="from")] = None
    to: Timestamp | None = None
    sections: Annotated[
        list[Section], Field(min_length=1, max_length=2, json_schema_extra={"uniqueItems": True})
    ] = [
        "members",
        "messages",
    ]

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @field_validator("from_", "to")
    @classmethod
    def _within_limits(cls, value: dt.datetime | None) -> dt.datetime | None:
        if value is not None and not FIRST_YEAR <= value.year <= LAST_YEAR:
            raise ValueError(f"must be in the years {FIRST_YEAR} to {LAST_YEAR}")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> SnapshotScope:
        if self.from_ and self.to and self.from_ > self.to:
            raise ValueError("scope.from must not be after scope.to")
        if len(set(self.sections)) != len(self.sections):
            raise ValueError("scope.sections must not repeat a section")
        return self


TIMEZONES = frozenset(zoneinfo.available_timezones())


class SnapshotOptions(RenderOptions):
    """The render options, with the title and time zone rules spelled out for OpenAPI."""

    title: Annotated[Line, Field(max_length=limits.TITLE_CHARS)] | None = None
    timezone: Annotated[
        str, Field(max_length=limits.TIMEZONE_CHARS, json_schema_extra={"enum": sorted(TIMEZONES)})
    ] = "UTC"

    @field_validator("timezone", mode="before")
    @classmethod
    def _listed_timezone(cls, value: Any) -> Any:
        """Only IANA names the schema lists (no file system look-up for anything else)."""
        if isinstance(value, str) and value not in TIMEZONES:
            raise ValueError("unknown time zone; use an IANA name such as Europe/Berlin")
        return value


class SnapshotRequest(Strict):
    scope: SnapshotScope = SnapshotScope()
    options: SnapshotOptions = SnapshotOptions()
    callback_url: (
        Annotated[
            str,
            Field(
                min_length=1,
                max_length=MAX_URL_CHARS,
                json_schema_extra={"format": "uri"},
                description="http(s) URL that receives a signed snapshot.completed or"
                " snapshot.failed event (Standard Webhooks); needs a webhook secret first"
                " (POST /api/v1/webhooks/secret)",
            ),
        ]
        | None
    ) = None


# ---- responses ---------------------------------------------------------------------------


class Room(BaseModel):
    id: UUID
    name: str
    created_by: str
    created_at: dt.datetime
    member_count: int
    your_role: Role | None = None


class Member(BaseModel):
    room_id: UUID
    user_id: str
    display_name: str
    role: Role
    joined_at: dt.datetime


class Message(BaseModel):
    id: UUID
    room_id: UUID
    author_id: str
    author_name: str
    body: str
    kind: Kind
    created_at: dt.datetime
    ordinal: Annotated[
        int, Field(ge=0, description="The message's position in its room's timeline, from 0")
    ]


class MessageList(BaseModel):
    items: list[Message]
    next_cursor: str | None


class Links(BaseModel):
    task: str
    snapshot: str
    download: str


class SnapshotAccepted(BaseModel):
    snapshot_id: UUID
    task_id: UUID
    status: str
    content_hash: str
    links: Links


class TaskError(BaseModel):
    code: str
    message: str | None


class Task(BaseModel):
    task_id: UUID
    snapshot_id: UUID
    status: Literal["queued", "rendering", "completed", "failed"]
    progress: int
    phase: str
    cache: Literal["memory", "disk", "miss"] | None
    error: TaskError | None
    created_at: dt.datetime
    started_at: dt.datetime | None
    completed_at: dt.datetime | None
    pieces_done: Annotated[
        int | None,
        Field(ge=0, description="Pieces of the snapshot rendered so far (null when unknown)"),
    ] = None
    pieces_total: Annotated[
        int | None,
        Field(ge=0, description="Pieces the snapshot renders as (null when unknown)"),
    ] = None


class ArtifactOut(BaseModel):
    bytes: int
    pages: int
    pdf_sha256: str


class Snapshot(BaseModel):
    id: UUID
    room_id: UUID
    requested_by: str
    created_at: dt.datetime
    scope: dict[str, Any]
    options: dict[str, Any]
    content_hash: str
    message_count: int
    status: str
    artifact: ArtifactOut | None
    error: TaskError | None
    task: Task | None
    links: Links


class SnapshotList(BaseModel):
    items: list[Snapshot]
    next_cursor: str | None


class Problem(BaseModel):
    """An RFC 9457 problem document; ``code`` is stable, other members may be added."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    code: str
    detail: str
    instance: str
    request_id: str | None


class Readiness(BaseModel):
    status: Literal["ok", "unavailable"]
    checks: dict[str, Literal["up", "down"]]
