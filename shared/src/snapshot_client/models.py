"""Typed answers of the API. Each keeps the JSON it was read from in ``raw`` (what ``--json``
prints), so a field the API adds later is never lost on the way through the client."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

TaskStatus = Literal["queued", "rendering", "completed", "failed"]
FollowedVia = Literal["events", "polling"]
TERMINAL: frozenset[str] = frozenset({"completed", "failed"})


def _time(value: Any) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


def _count(value: Any) -> int | None:
    """A count the API may leave out or null (an API older than the field sends none)."""
    return None if value is None else int(value)


def _required_time(value: Any) -> dt.datetime:
    parsed = _time(value)
    if parsed is None:
        raise ValueError("missing timestamp")
    return parsed


@dataclass(frozen=True)
class Room:
    id: str
    name: str
    created_by: str
    created_at: dt.datetime
    member_count: int
    your_role: str | None
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Room:
        return cls(
            str(data["id"]),
            data["name"],
            data.get("created_by", ""),
            _required_time(data["created_at"]),
            int(data.get("member_count", 1)),
            data.get("your_role"),
            data,
        )


@dataclass(frozen=True)
class Member:
    room_id: str
    user_id: str
    display_name: str
    role: str
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Member:
        return cls(str(data["room_id"]), data["user_id"], data["display_name"], data["role"], data)


@dataclass(frozen=True)
class Message:
    id: str
    room_id: str
    author_id: str
    body: str
    kind: str
    created_at: dt.datetime
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Message:
        return cls(
            str(data["id"]),
            str(data["room_id"]),
            data["author_id"],
            data["body"],
            data.get("kind", "message"),
            _required_time(data["created_at"]),
            data,
        )


@dataclass(frozen=True)
class SnapshotAccepted:
    """The 202 answer to a snapshot request (``reused`` is not known from the body alone)."""

    snapshot_id: str
    task_id: str
    status: str
    content_hash: str
    links: dict[str, str]
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SnapshotAccepted:
        return cls(
            str(data["snapshot_id"]),
            str(data["task_id"]),
            data["status"],
            data["content_hash"],
            dict(data.get("links") or {}),
            data,
        )


@dataclass(frozen=True)
class TaskError:
    code: str
    message: str | None


@dataclass(frozen=True)
class Task:
    task_id: str
    snapshot_id: str
    status: TaskStatus
    progress: int
    phase: str
    cache: str | None
    error: TaskError | None
    created_at: dt.datetime
    started_at: dt.datetime | None
    completed_at: dt.datetime | None
    raw: dict[str, Any] = field(repr=False, compare=False)
    pieces_done: int | None = None  # a render in pieces: how many are ready, of how many
    pieces_total: int | None = None

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def pieces(self) -> str:
        """``"3/40 pieces"`` while both counts are known, else ``""``."""
        if self.pieces_done is None or self.pieces_total is None:
            return ""
        return f"{self.pieces_done}/{self.pieces_total} pieces"

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Task:
        error = data.get("error")
        return cls(
            str(data["task_id"]),
            str(data["snapshot_id"]),
            data["status"],
            int(data.get("progress") or 0),
            data.get("phase") or "",
            data.get("cache"),
            TaskError(error["code"], error.get("message")) if error else None,
            _required_time(data["created_at"]),
            _time(data.get("started_at")),
            _time(data.get("completed_at")),
            data,
            _count(data.get("pieces_done")),
            _count(data.get("pieces_total")),
        )


@dataclass(frozen=True)
class Followed:
    """How ``Client.follow`` learned a task's terminal state: ``via`` the event stream or by
    polling, and ``fallback``, why the event stream was left for polling (``None`` when it was
    not left, or not tried)."""

    task: Task
    via: FollowedVia
    fallback: str | None = None


@dataclass(frozen=True)
class Artifact:
    bytes: int
    pages: int
    pdf_sha256: str


@dataclass(frozen=True)
class Snapshot:
    id: str
    room_id: str
    requested_by: str
    created_at: dt.datetime
    status: str
    title: str | None
    message_count: int
    content_hash: str
    artifact: Artifact | None
    task: Task | None
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Snapshot:
        artifact = data.get("artifact")
        task = data.get("task")
        return cls(
            str(data["id"]),
            str(data["room_id"]),
            data.get("requested_by", ""),
            _required_time(data["created_at"]),
            data["status"],
            (data.get("options") or {}).get("title"),
            int(data.get("message_count") or 0),
            data.get("content_hash", ""),
            Artifact(artifact["bytes"], artifact["pages"], artifact["pdf_sha256"])
            if artifact
            else None,
            Task.from_json(task) if task else None,
            data,
        )


@dataclass(frozen=True)
class Download:
    """A PDF written to ``path`` (``None`` when it went to a stream)."""

    snapshot_id: str
    path: Path | None
    bytes: int
    filename: str | None
    etag: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "snapshot_id": self.snapshot_id,
            "path": str(self.path) if self.path else None,
            "bytes": self.bytes,
            "filename": self.filename,
            "etag": self.etag,
        }
