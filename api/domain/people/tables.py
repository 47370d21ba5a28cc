"""People helped and their care teams."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any, ClassVar

from sqlalchemy import (
    Column,
    ForeignKey,
    Index,
    LargeBinary,
    Numeric,
    String,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlmodel import Field

from api.db.base import Table, instant_column
from api.db.scoping import AttachedToPerson, Scoping


class Beneficiary(Table, table=True):
    """A person helped. Readable only by organisations attached to them (care team)."""

    __tablename__ = "beneficiary"
    __scoping__: ClassVar[Scoping] = AttachedToPerson(column="id")
    __table_args__ = (
        Index("ix_beneficiary_birth_date", "birth_date"),
        Index("ix_beneficiary_nir_hash", "nir_hash"),
    )

    id: uuid.UUID = Field(primary_key=True)
    birth_name: str = Field(max_length=200)
    usage_name: str | None = Field(default=None, max_length=200)
    first_names: str = Field(max_length=200)
    birth_date: date
    sex: str = Field(max_length=1)
    birth_place: str | None = Field(default=None, max_length=200)
    # NIR: AES-GCM ciphertext, and a keyed hash for exact lookup (api.domain.people.nir)
    nir_cipher: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    nir_hash: str | None = Field(default=None, max_length=64)
    nir_missing_reason: str | None = Field(default=None, max_length=200)
    commune_code: str | None = Field(default=None, foreign_key="commune.code", max_length=5)
    domiciliation_organisation_id: uuid.UUID | None = Field(
        default=None, foreign_key="organisation.id"
    )
    address: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONB, nullable=True))
    phone: str | None = Field(default=None, max_length=30)
    email: str | None = Field(default=None, max_length=320)
    situation: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONB, nullable=True))
    # folded name keys for duplicate detection (api.domain.identity.name_match_keys)
    match_keys: list[str] = Field(sa_column=Column(ARRAY(String), nullable=False))
    folded_names: str
    last_contact_at: datetime | None = Field(default=None, sa_column=instant_column(nullable=True))
    merged_into_id: uuid.UUID | None = Field(default=None, foreign_key="beneficiary.id")
    # set by the retention purge: identity, contact, NIR and free text are gone (domain.md §11)
    anonymised_at: datetime | None = Field(default=None, sa_column=instant_column(nullable=True))
    created_by_organisation_id: uuid.UUID = Field(foreign_key="organisation.id")
    version: int = 1
    created_at: datetime = Field(sa_column=instant_column())
    updated_at: datetime = Field(sa_column=instant_column())


class CareTeamMembership(Table, table=True):
    """An organisation following a person for a competence: the unit of sharing."""

    __tablename__ = "care_team_membership"
    __scoping__: ClassVar[Scoping] = AttachedToPerson(column="beneficiary_id")
    __table_args__ = (
        Index(
            "ix_care_team_membership_organisation_id_beneficiary_id",
            "organisation_id",
            "beneficiary_id",
        ),
    )

    id: uuid.UUID = Field(primary_key=True)
    beneficiary_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("beneficiary.id"), nullable=False, index=True)
    )
    organisation_id: uuid.UUID = Field(foreign_key="organisation.id")
    competence: str = Field(foreign_key="competence.code", max_length=40)
    referent_user_id: uuid.UUID | None = Field(default=None, foreign_key="app_user.id")
    team_role: str = Field(max_length=20)
    source: str = Field(max_length=20)
    justification: str | None = None
    # categories an approved access request grants; None: what the holding grants (§7)
    granted_categories: list[str] | None = Field(
        default=None, sa_column=Column(ARRAY(String(20)), nullable=True)
    )
    started_at: datetime = Field(sa_column=instant_column())
    ended_at: datetime | None = Field(default=None, sa_column=instant_column(nullable=True))
    end_reason: str | None = None
    # the referral or orientation this membership comes from, ended with it
    origin_id: uuid.UUID | None = Field(default=None, index=True)


class HouseholdMember(Table, table=True):
    """Someone living with the person: another beneficiary, or a light member."""

    __tablename__ = "household_member"
    __scoping__: ClassVar[Scoping] = AttachedToPerson(column="beneficiary_id")

    id: uuid.UUID = Field(primary_key=True)
    beneficiary_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("beneficiary.id"), nullable=False, index=True)
    )
    member_beneficiary_id: uuid.UUID | None = Field(default=None, foreign_key="beneficiary.id")
    first_name: str | None = Field(default=None, max_length=200)
    birth_date: date | None = None
    relation: str = Field(max_length=20)


class BudgetLine(Table, table=True):
    """A monthly resource or charge of the person's household."""

    __tablename__ = "budget_line"
    __scoping__: ClassVar[Scoping] = AttachedToPerson(column="beneficiary_id")

    id: uuid.UUID = Field(primary_key=True)
    beneficiary_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("beneficiary.id"), nullable=False, index=True)
    )
    kind: str = Field(max_length=10)  # resource | charge
    type: str = Field(max_length=60)
    monthly_amount: Decimal = Field(sa_column=Column(Numeric(12, 2), nullable=False))


class Note(Table, table=True):
    """A professional's note: private (author), organisation, or team (members holding the
    note's competence)."""

    __tablename__ = "note"
    __scoping__: ClassVar[Scoping] = AttachedToPerson(column="beneficiary_id")

    id: uuid.UUID = Field(primary_key=True)
    beneficiary_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("beneficiary.id"), nullable=False, index=True)
    )
    organisation_id: uuid.UUID = Field(foreign_key="organisation.id")
    author_user_id: uuid.UUID | None = Field(default=None, foreign_key="app_user.id")
    competence: str = Field(foreign_key="competence.code", max_length=40)
    visibility: str = Field(max_length=20)
    body: str
    created_at: datetime = Field(sa_column=instant_column())


class AccessRequest(Table, table=True):
    """An organisation asking the person's care team for access, approved or denied by a
    member; expires after 30 days."""

    __tablename__ = "access_request"
    __scoping__: ClassVar[Scoping] = AttachedToPerson(column="beneficiary_id")

    id: uuid.UUID = Field(primary_key=True)
    beneficiary_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("beneficiary.id"), nullable=False, index=True)
    )
    organisation_id: uuid.UUID = Field(foreign_key="organisation.id", index=True)
    requested_by_user_id: uuid.UUID | None = Field(default=None, foreign_key="app_user.id")
    competence: str = Field(foreign_key="competence.code", max_length=40)
    reason: str
    categories: list[str] = Field(sa_column=Column(ARRAY(String(20)), nullable=False))
    status: str = Field(max_length=20)
    created_at: datetime = Field(sa_column=instant_column())
    expires_at: datetime = Field(sa_column=instant_column())
    decided_at: datetime | None = Field(default=None, sa_column=instant_column(nullable=True))
    decided_by_organisation_id: uuid.UUID | None = Field(
        default=None, foreign_key="organisation.id"
    )
    decided_by_user_id: uuid.UUID | None = Field(default=None, foreign_key="app_user.id")
    decision_reason: str | None = None


class Consent(Table, table=True):
    """An information notice given to the person, or their consent to a sharing, scoped to
    a recipient organisation and/or a competence; withdrawn with a date and a reason."""

    __tablename__ = "consent"
    __scoping__: ClassVar[Scoping] = AttachedToPerson(column="beneficiary_id")

    id: uuid.UUID = Field(primary_key=True)
    beneficiary_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("beneficiary.id"), nullable=False, index=True)
    )
    kind: str = Field(max_length=20)  # information | consent
    organisation_id: uuid.UUID | None = Field(default=None, foreign_key="organisation.id")
    competence: str | None = Field(default=None, foreign_key="competence.code", max_length=40)
    purpose: str
    method: str = Field(max_length=20)
    given_on: date
    withdrawn_on: date | None = None
    withdrawal_reason: str | None = None
    recorded_by_organisation_id: uuid.UUID = Field(foreign_key="organisation.id")
    recorded_by_user_id: uuid.UUID | None = Field(default=None, foreign_key="app_user.id")
    created_at: datetime = Field(sa_column=instant_column())
