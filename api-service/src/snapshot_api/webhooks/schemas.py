"""Bodies of the webhook endpoints: the secret, and deliveries with their attempts."""

from __future__ import annotations

import datetime as dt
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field


class WebhookSecret(BaseModel):
    secret: str = Field(description="whsec_ and the base64 of the key; shown only this once")


class WebhookAttempt(BaseModel):
    attempt: int
    started_at: dt.datetime
    finished_at: dt.datetime | None = Field(
        description="null if the sender stopped mid-attempt (the next attempt follows)"
    )
    status_code: int | None
    error: str | None


class WebhookDelivery(BaseModel):
    id: UUID = Field(description="the webhook-id header, the same on every attempt")
    type: Literal["snapshot.completed", "snapshot.failed"]
    task_id: UUID
    snapshot_id: UUID
    url: str
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    created_at: dt.datetime
    next_attempt_at: dt.datetime | None
    last_attempt_at: dt.datetime | None
    last_status_code: int | None
    last_error: str | None
    finished_at: dt.datetime | None
    history: list[WebhookAttempt]


class WebhookDeliveryList(BaseModel):
    items: list[WebhookDelivery]
    next_cursor: str | None
