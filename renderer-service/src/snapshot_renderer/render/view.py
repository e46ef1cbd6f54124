"""Turn a validated payload into what the template shows: formatted times, day groups, labels.

Everything here shapes the PDF, so this file is part of the renderer fingerprint. Times are
formatted with fixed English names (no process locale), in the time zone the options ask for.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass, field
from typing import Any

from snapshot_shared.messages import PayloadMessage, RenderOptions, SnapshotPayload

_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = (
    "January", "February", "March", "April", "May", "June", "July",
    "August", "September", "October", "November", "December",
)  # fmt: skip
KIND_LABELS = {"note": "Note", "decision": "Decision"}
ROLE_LABELS = {"owner": "Owner", "editor": "Editor", "viewer": "Viewer"}


def _local(value: dt.datetime, tz: zoneinfo.ZoneInfo) -> dt.datetime:
    return value.astimezone(tz)


def format_datetime(value: dt.datetime, tz: zoneinfo.ZoneInfo) -> str:
    """``25 Nov 2026, 11:00 CET``."""
    local = _local(value, tz)
    month = _MONTHS[local.month - 1][:3]
    return f"{local.day} {month} {local.year}, {local:%H:%M} {local.tzname() or ''}".rstrip()


def format_day(value: dt.date) -> str:
    """``Wednesday, 25 November 2026``."""
    return f"{_DAYS[value.weekday()]}, {value.day} {_MONTHS[value.month - 1]} {value.year}"


def w3c_utc(value: dt.datetime) -> str:
    """``2026-11-25T10:00:00Z``, the form WeasyPrint copies into the PDF dates."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class DayGroup:
    """Messages of one calendar day in the snapshot's time zone."""

    heading: str
    messages: list[dict[str, Any]] = field(default_factory=list)


def _message_view(message: PayloadMessage, tz: zoneinfo.ZoneInfo) -> dict[str, Any]:
    local = _local(message.created_at, tz)
    kind = message.kind if message.kind in KIND_LABELS else "message"
    return {
        "author": message.author_name or message.author_id,
        "author_id": message.author_id,
        "time": f"{local:%H:%M}",
        "kind": kind,
        "kind_label": KIND_LABELS.get(kind, ""),
        "body": message.body,
    }


def group_by_day(messages: list[PayloadMessage], tz: zoneinfo.ZoneInfo) -> list[DayGroup]:
    """Consecutive messages grouped under their local calendar day."""
    groups: list[DayGroup] = []
    current: dt.date | None = None
    for message in messages:
        day = _local(message.created_at, tz).date()
        if day != current:
            groups.append(DayGroup(heading=format_day(day)))
            current = day
        groups[-1].messages.append(_message_view(message, tz))
    return groups


def build_context(payload: SnapshotPayload, options: RenderOptions) -> dict[str, Any]:
    """The template context: plain strings and lists, nothing callable."""
    tz = zoneinfo.ZoneInfo(options.timezone)
    room = payload.room
    stamp = payload.as_of or room.created_at
    members = [
        {
            "name": m.display_name or m.user_id,
            "user_id": m.user_id,
            "role": ROLE_LABELS.get(m.role, m.role),
            "joined": format_datetime(m.joined_at, tz),
        }
        for m in payload.members
    ]
    return {
        "title": options.title or f"Snapshot of {room.name}",
        "room_name": room.name,
        "room_created": format_datetime(room.created_at, tz),
        "as_of": format_datetime(payload.as_of, tz) if payload.as_of else None,
        "timezone": options.timezone,
        "lang": options.locale.replace("_", "-"),
        "created_w3c": w3c_utc(stamp),
        "show_members": "members" in payload.sections,
        "show_messages": "messages" in payload.sections,
        "members": members,
        "days": group_by_day(payload.messages, tz),
        "message_count": len(payload.messages),
    }
