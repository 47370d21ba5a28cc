"""Webhook subscriptions and their delivery log."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from api.http.schemas import Input, Output

EventPattern = Annotated[str, StringConstraints(min_length=1, max_length=60)]
DeliveryStatus = Literal["pending", "delivered", "failed", "skipped"]


class WebhookCreate(Input):
    url: Annotated[str, StringConstraints(min_length=1, max_length=2048)] = Field(
        description="https endpoint resolving to public addresses only."
    )
    events: list[EventPattern] = Field(
        max_length=50, description="Exact event types, '<type>.*' or '*'."
    )
    description: Annotated[str, StringConstraints(max_length=500)] | None = None


class WebhookRead(Output):
    id: uuid.UUID
    url: str
    events: list[str]
    description: str | None
    active: bool
    created_at: datetime


class WebhookCreated(WebhookRead):
    secret: str = Field(
        description="Standard Webhooks signing secret (whsec_…), shown once: store it now."
    )


class WebhookAttemptRead(Output):
    attempt: int
    at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int


class WebhookDeliveryRead(Output):
    id: uuid.UUID
    webhook_id: str = Field(description="The webhook-id header, the same on every retry.")
    event_type: str
    resource_type: str
    resource_id: uuid.UUID
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    attempt_log: list[WebhookAttemptRead]


class WebhookTestQueued(Output):
    delivery_id: uuid.UUID
    webhook_id: str
    status: DeliveryStatus
