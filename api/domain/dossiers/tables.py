"""Legal-aid dossiers, their external references and dated events (domain.md §9)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any, ClassVar

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Identity,
    Index,
    Numeric,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field

from api.db.base import Table, instant_column
from api.db.scoping import AttachedToPerson, Scoping


class Dossier(Table, table=True):
    """An application for a legal-aid prestation, instructed by one organisation and decided
    by the legal holder. Visible to the organisations attached to the person for the
    prestation (the ``guichet_can_see_dossier`` function repeats the rule in the database).

    Field ownership: ``instruction`` belongs to the instructing organisation, the decision
    columns to the deciding one. ``<group>_updated_at`` is when the group's current value
    became true at its source: the write time for the API, the item's ``source_updated_at``
    for a sync, so that a sync item older than the other side's last change is a conflict."""

    __tablename__ = "dossier"
    __scoping__: ClassVar[Scoping] = AttachedToPerson(column="beneficiary_id")
    __table_args__ = (
        Index("ix_dossier_beneficiary_id_prestation", "beneficiary_id", "prestation"),
        Index("ix_dossier_instructing_organisation_id", "instructing_organisation_id"),
        Index("ix_dossier_deciding_organisation_id", "deciding_organisation_id"),
    )

    id: uuid.UUID = Field(primary_key=True)
    beneficiary_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("beneficiary.id"), nullable=False)
    )
    prestation: str = Field(foreign_key="competence.code", max_length=40)
    instructing_organisation_id: uuid.UUID = Field(foreign_key="organisation.id")
    deciding_organisation_id: uuid.UUID = Field(foreign_key="organisation.id")
    status: str = Field(max_length=20)
    instruction: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    instruction_updated_at: datetime = Field(sa_column=instant_column())
    decision: str | None = Field(default=None, max_length=20)
    amount: Decimal | None = Field(default=None, sa_column=Column(Numeric(12, 2), nullable=True))
    start_on: date | None = None
    end_on: date | None = None
    decision_reason: str | None = None
    decided_on: date | None = None
    decision_updated_at: datetime | None = Field(
        default=None, sa_column=instant_column(nullable=True)
    )
    status_changed_at: datetime = Field(sa_column=instant_column())
    version: int = 1
    created_at: datetime = Field(sa_column=instant_column())
    updated_at: datetime = Field(sa_column=instant_column())


class DossierExternalRef(Table, table=True):
    """An identifier of the dossier in a partner's information system. Unique per recording
    organisation: a sync finds the dossiers by the references its own organisation recorded."""

    __tablename__ = "dossier_external_ref"
    __scoping__: ClassVar[Scoping] = AttachedToPerson(column="beneficiary_id")
    __table_args__ = (UniqueConstraint("organisation_id", "system", "external_id"),)

    id: int | None = Field(
        default=None, sa_column=Column(BigInteger, Identity(always=True), primary_key=True)
    )
    dossier_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("dossier.id"), nullable=False, index=True)
    )
    beneficiary_id: uuid.UUID = Field(foreign_key="beneficiary.id")
    organisation_id: uuid.UUID = Field(foreign_key="organisation.id")
    system: str = Field(max_length=60)
    external_id: str = Field(max_length=100)
    created_at: datetime = Field(sa_column=instant_column())
    #: the digest of the sync item that last wrote the dossier through this reference, while
    #: nothing else wrote it since (migration 0029: any write to the dossier clears it)
    synced_digest: str | None = Field(default=None, max_length=64)


class DossierEvent(Table, table=True):
    """A dated, immutable event of a dossier: creation, transition, edit or sync."""

    __tablename__ = "dossier_event"
    __scoping__: ClassVar[Scoping] = AttachedToPerson(column="beneficiary_id")

    id: int | None = Field(
        default=None, sa_column=Column(BigInteger, Identity(always=True), primary_key=True)
    )
    dossier_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("dossier.id"), nullable=False, index=True)
    )
    beneficiary_id: uuid.UUID = Field(foreign_key="beneficiary.id")
    at: datetime = Field(sa_column=instant_column())
    action: str = Field(max_length=20)
    from_status: str | None = Field(default=None, max_length=20)
    to_status: str | None = Field(default=None, max_length=20)
    organisation_id: uuid.UUID = Field(foreign_key="organisation.id")
    actor_user_id: uuid.UUID | None = None
    actor_client_id: uuid.UUID | None = None
    acting_agent: str | None = Field(default=None, max_length=200)
    #: "api" or "sync"
    channel: str = Field(max_length=10)
    comment: str | None = None
