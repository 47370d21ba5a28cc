"""Orientations of a person to a partner, with their immutable events (domain.md §8)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import ClassVar

from sqlalchemy import BigInteger, Column, ForeignKey, Identity, Index, text
from sqlmodel import Field

from api.db.base import Table, instant_column
from api.db.scoping import AttachedToPerson, Scoping


class Orientation(Table, table=True):
    """A decision that a person should be followed by a partner for a competence."""

    __tablename__ = "orientation"
    __scoping__: ClassVar[Scoping] = AttachedToPerson(column="beneficiary_id")
    __table_args__ = (
        Index("ix_orientation_inbox", "target_organisation_id", "created_at", "id"),
        Index("ix_orientation_outbox", "issuer_organisation_id", "created_at", "id"),
        # at most one active orientation per person and competence (réorientation ends it)
        Index(
            "uq_orientation_active",
            "beneficiary_id",
            "competence",
            unique=True,
            postgresql_where=text("status = 'accepted'"),
        ),
    )

    id: uuid.UUID = Field(primary_key=True)
    beneficiary_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("beneficiary.id"), nullable=False, index=True)
    )
    competence: str = Field(foreign_key="competence.code", max_length=40)
    issuer_organisation_id: uuid.UUID = Field(foreign_key="organisation.id")
    issuer_user_id: uuid.UUID | None = Field(default=None, foreign_key="app_user.id")
    issuer_client_id: uuid.UUID | None = None
    target_organisation_id: uuid.UUID = Field(foreign_key="organisation.id")
    category: str | None = Field(default=None, max_length=30)
    reason: str
    referent_user_id: uuid.UUID | None = Field(default=None, foreign_key="app_user.id")
    previous_orientation_id: uuid.UUID | None = Field(default=None, foreign_key="orientation.id")
    status: str = Field(max_length=20)
    version: int = 1
    created_at: datetime = Field(sa_column=instant_column())
    updated_at: datetime = Field(sa_column=instant_column())


class OrientationEvent(Table, table=True):
    """An immutable transition of an orientation."""

    __tablename__ = "orientation_event"
    __scoping__: ClassVar[Scoping] = AttachedToPerson(column="orientation_id")

    id: int | None = Field(
        default=None, sa_column=Column(BigInteger, Identity(always=True), primary_key=True)
    )
    orientation_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("orientation.id"), nullable=False, index=True)
    )
    at: datetime = Field(sa_column=instant_column())
    from_status: str | None = Field(default=None, max_length=20)
    to_status: str = Field(max_length=20)
    organisation_id: uuid.UUID | None = Field(default=None, foreign_key="organisation.id")
    actor_user_id: uuid.UUID | None = None
    actor_client_id: uuid.UUID | None = None
    acting_agent: str | None = Field(default=None, max_length=200)
    reason_code: str | None = Field(default=None, max_length=40)
    comment: str | None = None
