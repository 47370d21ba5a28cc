"""Webhook subscriptions of the caller's organisation and their delivery log."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from api.domain.webhooks import service
from api.domain.webhooks.deps import HooksContext
from api.domain.webhooks.schemas import (
    DeliveryStatus,
    WebhookCreate,
    WebhookCreated,
    WebhookDeliveryRead,
    WebhookRead,
    WebhookTestQueued,
)
from api.http.deps import TransactionRoute
from api.http.idempotency import Idempotent
from api.http.schemas import Cursor, Limit, Page

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"], route_class=TransactionRoute)


DELIVERY_CONTRACT = (
    "Delivery is **at least once**: messages are signed per the Standard Webhooks "
    "specification and retried with backoff for at least 24 hours; a message whose answer was "
    "lost (a timeout, a worker stopped mid-send) is sent again with the same `webhook-id` and "
    "body. Receivers deduplicate on `webhook-id`. Bodies carry ids only: read the details "
    "with your own rights."
)


@router.post(
    "",
    response_model=WebhookCreated,
    status_code=status.HTTP_201_CREATED,
    description=DELIVERY_CONTRACT,
)
async def create_webhook(
    ctx: HooksContext, body: WebhookCreate, idem: Idempotent
) -> WebhookCreated:
    """Subscribe an https endpoint to event types; the signing secret is shown once."""
    return await idem.once(
        lambda: service.create(ctx, body), location=lambda created: f"/v1/webhooks/{created.id}"
    )


@router.get("", response_model=Page[WebhookRead])
async def list_webhooks(
    ctx: HooksContext, cursor: Cursor = None, limit: Limit = 50
) -> Page[WebhookRead]:
    """The organisation's webhook subscriptions."""
    return await service.listing(ctx, cursor=cursor, limit=limit)


@router.get("/{webhook_id}", response_model=WebhookRead)
async def get_webhook(ctx: HooksContext, webhook_id: uuid.UUID) -> WebhookRead:
    """Read one subscription (never its secret)."""
    return await service.get(ctx, webhook_id)


@router.delete("/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_webhook(ctx: HooksContext, webhook_id: uuid.UUID) -> None:
    """Delete a subscription: its queued messages are dropped."""
    await service.remove(ctx, webhook_id)


@router.get("/{webhook_id}/deliveries", response_model=Page[WebhookDeliveryRead])
async def list_deliveries(
    ctx: HooksContext,
    webhook_id: uuid.UUID,
    status: Annotated[DeliveryStatus | None, Query()] = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[WebhookDeliveryRead]:
    """Messages to this subscription, newest first, with every attempt made."""
    return await service.deliveries(ctx, webhook_id, status=status, cursor=cursor, limit=limit)


@router.post(
    "/{webhook_id}/test",
    response_model=WebhookTestQueued,
    status_code=status.HTTP_202_ACCEPTED,
)
async def test_webhook(ctx: HooksContext, webhook_id: uuid.UUID) -> WebhookTestQueued:
    """Queue a signed webhook.test message to this subscription."""
    return await service.send_test(ctx, webhook_id)
