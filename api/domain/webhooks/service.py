"""Webhook subscriptions of an organisation (its admins): create (the secret is shown once),
list, read, delete, the delivery log, and a test message."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from api.auth.permissions import Action
from api.auth.scope import Scope
from api.db.tables import WebhookDelivery, WebhookSubscription
from api.domain import clock
from api.domain.audit.repository import AuditLog
from api.domain.changes.repository import Sealer
from api.domain.webhooks.network import UnsafeEndpoint, new_secret, resolve
from api.domain.webhooks.repository import WebhookStore
from api.domain.webhooks.rules import TEST_EVENT, event_patterns_errors, parse_endpoint
from api.domain.webhooks.schemas import (
    WebhookAttemptRead,
    WebhookCreate,
    WebhookCreated,
    WebhookDeliveryRead,
    WebhookRead,
    WebhookTestQueued,
)
from api.http.schemas import Page, as_instant, decode_keyset, encode_cursor
from api.problems import Conflict, FieldError, NotFound, ValidationFailed

#: subscriptions per organisation
MAX_SUBSCRIPTIONS = 25


@dataclass(frozen=True)
class Hooks:
    """What the use cases need, built for one request (api.domain.webhooks.deps)."""

    scope: Scope
    store: WebhookStore
    audit: AuditLog
    sealer: Sealer
    allow_private: bool


def secret_context(subscription_id: uuid.UUID) -> str:
    """What a sealed signing secret is bound to (the worker opens it with the same)."""
    return f"webhook:{subscription_id}"


def _read(subscription: WebhookSubscription) -> WebhookRead:
    return WebhookRead.model_validate(subscription, from_attributes=True)


async def create(ctx: Hooks, body: WebhookCreate) -> WebhookCreated:
    ctx.scope.require(Action.MANAGE_WEBHOOKS)
    errors = event_patterns_errors(body.events)
    endpoint = parse_endpoint(body.url, allow_private=ctx.allow_private)
    if isinstance(endpoint, FieldError):
        errors.insert(0, endpoint)
    if errors:
        raise ValidationFailed(detail=errors[0].detail, errors=errors)
    assert not isinstance(endpoint, FieldError)
    try:
        await resolve(endpoint, allow_private=ctx.allow_private)
    except UnsafeEndpoint as unsafe:
        raise ValidationFailed(
            detail=f"The URL cannot be used: {unsafe.reason}.",
            errors=[FieldError("/url", f"Not usable: {unsafe.reason}.")],
        ) from None
    if await ctx.store.count() >= MAX_SUBSCRIPTIONS:
        raise Conflict(detail=f"An organisation has at most {MAX_SUBSCRIPTIONS} webhooks.")
    subscription_id = uuid.uuid4()
    secret = new_secret()
    subscription = WebhookSubscription(
        id=subscription_id,
        organisation_id=ctx.scope.organisation_id,
        url=body.url,
        events=sorted(set(body.events)),
        description=body.description,
        secret_cipher=ctx.sealer.seal(secret.encode(), secret_context(subscription_id)),
        active=True,
        created_by=ctx.scope.principal_id,
        created_at=clock.now(),
    )
    await ctx.store.add(subscription)
    await ctx.audit.record("webhook.create", "webhook", str(subscription_id))
    return WebhookCreated(**_read(subscription).model_dump(), secret=secret)


async def _own(ctx: Hooks, subscription_id: uuid.UUID) -> WebhookSubscription:
    subscription = await ctx.store.get(subscription_id)
    if subscription is None:
        raise NotFound(detail="No such webhook.")
    ctx.scope.require(Action.MANAGE_WEBHOOKS)
    return subscription


async def get(ctx: Hooks, subscription_id: uuid.UUID) -> WebhookRead:
    return _read(await _own(ctx, subscription_id))


async def listing(ctx: Hooks, *, cursor: str | None, limit: int) -> Page[WebhookRead]:
    ctx.scope.require(Action.MANAGE_WEBHOOKS)
    after = _position(cursor)
    rows = await ctx.store.page(after=after, limit=limit)
    page = rows[:limit]
    return Page[WebhookRead](
        items=[_read(r) for r in page],
        next_cursor=_encode(page[-1]) if len(rows) > limit else None,
    )


async def remove(ctx: Hooks, subscription_id: uuid.UUID) -> None:
    await _own(ctx, subscription_id)
    await ctx.store.remove(subscription_id)
    await ctx.audit.record("webhook.delete", "webhook", str(subscription_id))


async def deliveries(
    ctx: Hooks,
    subscription_id: uuid.UUID,
    *,
    status: str | None,
    cursor: str | None,
    limit: int,
) -> Page[WebhookDeliveryRead]:
    await _own(ctx, subscription_id)
    before = _position(cursor)
    rows = await ctx.store.deliveries(subscription_id, status=status, before=before, limit=limit)
    page = rows[:limit]
    log: dict[uuid.UUID, list[WebhookAttemptRead]] = {r.id: [] for r in page}
    for attempt in await ctx.store.attempts([r.id for r in page]):
        log[attempt.delivery_id].append(
            WebhookAttemptRead.model_validate(attempt, from_attributes=True)
        )
    items = [
        WebhookDeliveryRead.model_validate(
            {
                **r.model_dump(),
                "next_attempt_at": r.next_attempt_at if r.status == "pending" else None,
                "attempt_log": log[r.id],
            }
        )
        for r in page
    ]
    return Page[WebhookDeliveryRead](
        items=items, next_cursor=_encode(page[-1]) if len(rows) > limit else None
    )


async def send_test(ctx: Hooks, subscription_id: uuid.UUID) -> WebhookTestQueued:
    """Queue a ``webhook.test`` message to this subscription only."""
    await _own(ctx, subscription_id)
    now = clock.now()
    delivery_id = uuid.uuid4()
    delivery = WebhookDelivery(
        id=delivery_id,
        subscription_id=subscription_id,
        organisation_id=ctx.scope.organisation_id,
        event_id=None,
        event_type=TEST_EVENT,
        resource_type="webhook",
        resource_id=subscription_id,
        resource_status=None,
        tombstone=False,
        event_at=now,
        webhook_id=f"msg_test_{delivery_id.hex}",
        status="pending",
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    await ctx.store.enqueue(delivery)
    await ctx.audit.record("webhook.test", "webhook", str(subscription_id))
    return WebhookTestQueued(
        delivery_id=delivery.id, webhook_id=delivery.webhook_id, status=delivery.status
    )


def _encode(row: WebhookSubscription | WebhookDelivery) -> str:
    return encode_cursor([row.created_at.isoformat(), str(row.id)])


def _position(cursor: str | None) -> tuple[datetime, uuid.UUID] | None:
    position = decode_keyset(cursor, as_instant, uuid.UUID)
    return (position[0], position[1]) if position else None
