"""Bodies of the admin endpoints: the audit trail and one user's rate limits."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any
from uuid import UUID

from pydantic import AfterValidator, BaseModel, Field, StringConstraints, WithJsonSchema

from snapshot_api.rate_policy import RATE_PATTERN, parse_rate
from snapshot_api.schemas import Strict


class AuditEntry(BaseModel):
    id: int
    at: dt.datetime
    actor: str | None
    action: str
    room_id: UUID | None
    snapshot_id: UUID | None
    outcome: str
    request_id: str | None
    client_addr: str | None
    subject: str | None = Field(
        None, description="the member a role change or removal was about (user id)"
    )
    detail: dict[str, Any] | None = Field(
        None, description="e.g. {from, to} of a role change, counts per action of denials"
    )
    count: int = Field(1, description="attempts this entry stands for (aggregated denials)")


class AuditList(BaseModel):
    items: list[AuditEntry]
    next_cursor: str | None


def _rate(value: str) -> str:
    if value != value.strip():
        raise ValueError(f"{value!r}: no spaces around the rate")
    parse_rate(value)  # ValueError: a 422 that says what is wrong
    return value


RateText = Annotated[
    str,
    StringConstraints(max_length=32),
    AfterValidator(_rate),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": RATE_PATTERN,
            "description": "N/UNIT (units second, minute, hour; burst N) or off (unlimited)",
            "examples": ["600/minute"],
        }
    ),
]


class RateLimitsPut(Strict):
    """A user's limits replacing the deployment's defaults; an action left out (or null) goes
    back to the default."""

    rooms: RateText | None = None
    messages: RateText | None = None
    members: RateText | None = None
    snapshots: RateText | None = None


class RateLimitsOut(BaseModel):
    user_id: str
    overrides: dict[str, str] = Field(description="this user's own limits, set by an admin")
    effective: dict[str, str] = Field(
        description="what applies to this user now, per action (`off`: unlimited)"
    )
    updated_at: dt.datetime | None
    updated_by: str | None
