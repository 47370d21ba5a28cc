"""What the service announces and remembers about writes: the change feed, webhook
subscriptions with their outbox and attempt log."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import ClassVar

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Identity,
    Index,
    LargeBinary,
    String,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import Field

from api.db.base import Table, instant_column
from api.db.scoping import OwnedByOrganisation, Scoping, SharedBetweenOrganisations


class ChangeEvent(Table, table=True):
    """One change announced to the organisations of its ``audience`` (ids only). The feed
    orders events by ``(txid, id)``: ``txid`` is the writing transaction's id, so that an
    event is never served before every event that could still commit before it
    (api.domain.changes.repository.ChangeFeed)."""

    __tablename__ = "change_event"
    __scoping__: ClassVar[Scoping] = SharedBetweenOrganisations(columns=("audience",))
    __table_args__ = (Index("ix_change_event_txid_id", "txid", "id"),)

    id: int | None = Field(
        default=None, sa_column=Column(BigInteger, Identity(always=True), primary_key=True)
    )
    txid: int = Field(sa_column=Column(BigInteger, nullable=False))
    type: str = Field(max_length=30)
    resource_id: uuid.UUID
    action: str = Field(max_length=30)
    event: str = Field(max_length=60)
    status: str | None = Field(default=None, max_length=30)
    audience: list[uuid.UUID] = Field(sa_column=Column(ARRAY(Uuid), nullable=False))
    at: datetime = Field(sa_column=instant_column())


class WebhookSubscription(Table, table=True):
    """An organisation's endpoint and the event types it wants; the signing secret is kept
    sealed (AES-GCM) because the worker needs it back to sign."""

    __tablename__ = "webhook_subscription"
    __scoping__: ClassVar[Scoping] = OwnedByOrganisation()
    __table_args__ = (
        Index(
            "ix_webhook_subscription_organisation_id_created_at", "organisation_id", "created_at"
        ),
    )

    id: uuid.UUID = Field(primary_key=True)
    organisation_id: uuid.UUID = Field(foreign_key="organisation.id")
    url: str = Field(max_length=2048)
    events: list[str] = Field(sa_column=Column(ARRAY(String(60)), nullable=False))
    description: str | None = Field(default=None, max_length=500)
    secret_cipher: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    active: bool = True
    created_by: uuid.UUID | None = None
    created_at: datetime = Field(sa_column=instant_column())


class WebhookDelivery(Table, table=True):
    """The outbox: one message for one subscription, written in the transaction of the
    change. ``webhook_id`` stays the same across retries; a worker holds a row it is
    sending with a lease (``locked_until``, ``claim_token``) so a crashed worker's jobs
    come back."""

    __tablename__ = "webhook_delivery"
    __scoping__: ClassVar[Scoping] = OwnedByOrganisation()
    __table_args__ = (
        Index("ix_webhook_delivery_subscription_id_created_at", "subscription_id", "created_at"),
        Index(
            "ix_webhook_delivery_due",
            "next_attempt_at",
            postgresql_where=text("status = 'pending'"),
        ),
    )

    id: uuid.UUID = Field(primary_key=True)
    subscription_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("webhook_subscription.id", ondelete="CASCADE"), nullable=False)
    )
    organisation_id: uuid.UUID = Field(foreign_key="organisation.id")
    event_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    event_type: str = Field(max_length=60)
    resource_type: str = Field(max_length=30)
    resource_id: uuid.UUID
    resource_status: str | None = Field(default=None, max_length=30)
    tombstone: bool = False
    event_at: datetime = Field(sa_column=instant_column())
    webhook_id: str = Field(max_length=64, unique=True)
    # pending | delivered | failed (gave up) | skipped (the subscriber may no longer see it)
    status: str = Field(max_length=20)
    attempts: int = 0
    next_attempt_at: datetime = Field(sa_column=instant_column())
    locked_until: datetime | None = Field(default=None, sa_column=instant_column(nullable=True))
    claim_token: uuid.UUID | None = None
    last_status_code: int | None = None
    last_error: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(sa_column=instant_column())
    delivered_at: datetime | None = Field(default=None, sa_column=instant_column(nullable=True))


class WebhookAttempt(Table, table=True):
    """One HTTP attempt of a delivery: status code or error class, never the body."""

    __tablename__ = "webhook_attempt"
    __scoping__: ClassVar[Scoping] = OwnedByOrganisation()
    __table_args__ = (Index("ix_webhook_attempt_delivery_id_attempt", "delivery_id", "attempt"),)

    id: int | None = Field(
        default=None, sa_column=Column(BigInteger, Identity(always=True), primary_key=True)
    )
    delivery_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("webhook_delivery.id", ondelete="CASCADE"), nullable=False)
    )
    organisation_id: uuid.UUID = Field(foreign_key="organisation.id")
    attempt: int
    at: datetime = Field(sa_column=instant_column())
    status_code: int | None = None
    error: str | None = Field(default=None, max_length=200)
    duration_ms: int
