"""Referrals between partners, with their immutable events and messages (domain.md §8)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, ClassVar

from sqlalchemy import BigInteger, Column, ForeignKey, Identity, Index, String, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlmodel import Field

from api.db.base import Table, instant_column
from api.db.scoping import Scoping, SharedBetweenOrganisations


class Referral(Table, table=True):
    """A request from one partner to another to act for a person (closed loop)."""

    __tablename__ = "referral"
    __scoping__: ClassVar[Scoping] = SharedBetweenOrganisations(
        columns=(
            "sender_organisation_id",
            "recipient_organisation_id",
            "redirected_by_organisation_id",
        )
    )
    __table_args__ = (
        Index("ix_referral_inbox", "recipient_organisation_id", "created_at", "id"),
        Index("ix_referral_outbox", "sender_organisation_id", "created_at", "id"),
        # a box filtered on a status, read in order (migration 0015)
        Index(
            "ix_referral_inbox_status", "recipient_organisation_id", "status", "created_at", "id"
        ),
        Index("ix_referral_outbox_status", "sender_organisation_id", "status", "created_at", "id"),
        # the chain of redirections (ReferralStore.chain)
        Index(
            "ix_referral_parent_referral_id",
            "parent_referral_id",
            postgresql_where=text("parent_referral_id IS NOT NULL"),
        ),
        Index(
            "ix_referral_due",
            "response_due_on",
            postgresql_where=text("status IN ('sent', 'acknowledged')"),
        ),
    )

    id: uuid.UUID = Field(primary_key=True)
    sender_organisation_id: uuid.UUID = Field(foreign_key="organisation.id")
    sender_user_id: uuid.UUID | None = Field(default=None, foreign_key="app_user.id")
    sender_client_id: uuid.UUID | None = None
    acting_agent: str | None = Field(default=None, max_length=200)
    recipient_organisation_id: uuid.UUID = Field(foreign_key="organisation.id")
    redirected_by_organisation_id: uuid.UUID | None = Field(
        default=None, foreign_key="organisation.id"
    )
    # an existing person, or an inline identity the recipient matches on acceptance
    beneficiary_id: uuid.UUID | None = Field(
        default=None, sa_column=Column(ForeignKey("beneficiary.id"), nullable=True, index=True)
    )
    inline_identity: dict[str, Any] | None = Field(
        default=None, sa_column=Column(JSONB, nullable=True)
    )
    commune_code: str = Field(foreign_key="commune.code", max_length=5)
    competence: str = Field(foreign_key="competence.code", max_length=40)
    need_code: str = Field(max_length=60)
    need_description: str
    message: str | None = None
    shared_categories: list[str] = Field(sa_column=Column(ARRAY(String(20)), nullable=False))
    urgency: str = Field(max_length=10)
    response_due_on: date
    # while on hold the deadline is paused; resuming adds the paused working days
    paused_on: date | None = None
    consent_id: uuid.UUID | None = Field(default=None, index=True)
    consent_override_reason: str | None = Field(default=None, max_length=30)
    consent_override_justification: str | None = None
    # an inline referral's consent, collected by the sender before the person has a record
    consent_declared: dict[str, Any] | None = Field(
        default=None, sa_column=Column(JSONB, nullable=True)
    )
    previous_referral_id: uuid.UUID | None = Field(default=None, foreign_key="referral.id")
    parent_referral_id: uuid.UUID | None = Field(default=None, foreign_key="referral.id")
    status: str = Field(max_length=20)
    version: int = 1
    created_at: datetime = Field(sa_column=instant_column())
    updated_at: datetime = Field(sa_column=instant_column())
    closed_at: datetime | None = Field(default=None, sa_column=instant_column(nullable=True))


class ReferralEvent(Table, table=True):
    """An immutable transition of a referral: who, for which organisation, when, why."""

    __tablename__ = "referral_event"
    __scoping__: ClassVar[Scoping] = SharedBetweenOrganisations(columns=("referral_id",))

    id: int | None = Field(
        default=None, sa_column=Column(BigInteger, Identity(always=True), primary_key=True)
    )
    referral_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("referral.id"), nullable=False, index=True)
    )
    at: datetime = Field(sa_column=instant_column())
    from_status: str | None = Field(default=None, max_length=20)
    to_status: str = Field(max_length=20)
    # None: the service itself (expiry)
    organisation_id: uuid.UUID | None = Field(default=None, foreign_key="organisation.id")
    actor_user_id: uuid.UUID | None = None
    actor_client_id: uuid.UUID | None = None
    acting_agent: str | None = Field(default=None, max_length=200)
    reason_code: str | None = Field(default=None, max_length=40)
    outcome_code: str | None = Field(default=None, max_length=40)
    comment: str | None = None


class ReferralMessage(Table, table=True):
    """A message exchanged by both sides of a referral."""

    __tablename__ = "referral_message"
    __scoping__: ClassVar[Scoping] = SharedBetweenOrganisations(columns=("referral_id",))

    id: uuid.UUID = Field(primary_key=True)
    referral_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("referral.id"), nullable=False, index=True)
    )
    organisation_id: uuid.UUID = Field(foreign_key="organisation.id")
    author_user_id: uuid.UUID | None = None
    author_client_id: uuid.UUID | None = None
    acting_agent: str | None = Field(default=None, max_length=200)
    body: str
    created_at: datetime = Field(sa_column=instant_column())
