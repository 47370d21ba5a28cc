"""The tables of aides facultatives (domain.md §10), typed.

Columns a statistician reads stay plain (grantor, commune of the person at submission,
category, form, status, amounts, dates, reason code): the ABS counts aids from them without
opening a JSON document. Row-level security (migration 0019) repeats who may read each row.
"""

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
    Integer,
    Numeric,
    String,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlmodel import Field

from api.db.base import Table, instant_column
from api.db.scoping import AttachedToPerson, OwnedByOrganisation, Public, Scoping


def _amount(nullable: bool = False) -> Any:
    return Column(Numeric(12, 2), nullable=nullable)


class AidRules(Table, table=True):
    """One version of an organisation's règlement, in force from ``valid_from`` (until the
    next version's ``valid_from`` or ``valid_until``). Public: an administrative document.
    Row-level security lets an organisation write only its own."""

    __tablename__ = "aid_rules"
    __scoping__: ClassVar[Scoping] = Public(requires_rls=True)
    __table_args__ = (
        Index("ix_aid_rules_organisation_id_valid_from", "organisation_id", "valid_from"),
    )

    id: uuid.UUID = Field(primary_key=True)
    organisation_id: uuid.UUID = Field(foreign_key="organisation.id")
    title: str = Field(max_length=200)
    valid_from: date
    valid_until: date | None = None
    max_per_household_12_months: Decimal | None = Field(default=None, sa_column=_amount(True))
    created_at: datetime = Field(sa_column=instant_column())
    created_by_user_id: uuid.UUID | None = None


class AidType(Table, table=True):
    """One aid of a règlement version. ``communes`` is resolved at publication (default:
    where the organisation holds the competence), so the comparison reads it as is."""

    __tablename__ = "aid_type"
    __scoping__: ClassVar[Scoping] = Public(requires_rls=True)
    __table_args__ = (
        UniqueConstraint("rules_id", "code"),
        Index("ix_aid_type_communes", "communes", postgresql_using="gin"),
    )

    id: uuid.UUID = Field(primary_key=True)
    rules_id: uuid.UUID = Field(foreign_key="aid_rules.id")
    organisation_id: uuid.UUID = Field(foreign_key="organisation.id")
    position: int
    code: str = Field(max_length=60)
    label: str = Field(max_length=200)
    competence: str = Field(foreign_key="competence.code", max_length=40)
    category: str = Field(max_length=20)
    forms: list[str] = Field(sa_column=Column(ARRAY(String(30)), nullable=False))
    max_per_request: Decimal = Field(sa_column=_amount())
    max_per_household_12_months: Decimal | None = Field(default=None, sa_column=_amount(True))
    max_requests_12_months: int | None = None
    reste_a_vivre_max: Decimal | None = Field(default=None, sa_column=_amount(True))
    residence_months_min: int | None = None
    communes: list[str] = Field(sa_column=Column(ARRAY(String(5)), nullable=False))
    #: ordered ``[{"up_to": "80.00" | null, "by": "agent"}]``
    decision: list[dict[str, Any]] = Field(sa_column=Column(JSONB, nullable=False))
    emergency_up_to: Decimal | None = Field(default=None, sa_column=_amount(True))


class AidRequest(Table, table=True):
    """A request for an aid of a grantor's règlement, about a person, instructed by the
    grantor or a delegate. Visible like a dossier: to the organisations attached to the
    person for the aid's competence that hold it on the person's commune now."""

    __tablename__ = "aid_request"
    __scoping__: ClassVar[Scoping] = AttachedToPerson(column="beneficiary_id")
    __table_args__ = (
        Index("ix_aid_request_beneficiary_id", "beneficiary_id"),
        Index("ix_aid_request_grantor_organisation_id_status", "grantor_organisation_id", "status"),
        Index("ix_aid_request_instructing_organisation_id", "instructing_organisation_id"),
    )

    id: uuid.UUID = Field(primary_key=True)
    beneficiary_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("beneficiary.id"), nullable=False)
    )
    grantor_organisation_id: uuid.UUID = Field(foreign_key="organisation.id")
    instructing_organisation_id: uuid.UUID = Field(foreign_key="organisation.id")
    #: the règlement version in force on the submission date (on creation until submitted)
    rules_id: uuid.UUID = Field(foreign_key="aid_rules.id")
    aid_type_id: uuid.UUID = Field(foreign_key="aid_type.id")
    aid_code: str = Field(max_length=60)
    competence: str = Field(foreign_key="competence.code", max_length=40)
    category: str = Field(max_length=20)
    form: str = Field(max_length=30)
    amount_asked: Decimal = Field(sa_column=_amount())
    amount_granted: Decimal | None = Field(default=None, sa_column=_amount(True))
    payee: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    reason: str
    #: the person's commune at creation, then at submission
    commune_code: str = Field(max_length=5)
    status: str = Field(max_length=20)
    required_level: str | None = Field(default=None, max_length=20)
    decision_level: str | None = Field(default=None, max_length=20)
    assessment: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONB, nullable=True))
    budget_snapshot: dict[str, Any] | None = Field(
        default=None, sa_column=Column(JSONB, nullable=True)
    )
    reste_a_vivre: Decimal | None = Field(default=None, sa_column=_amount(True))
    consumption_units: Decimal | None = Field(
        default=None, sa_column=Column(Numeric(5, 2), nullable=True)
    )
    household_size: int | None = None
    refusal_reason: str | None = Field(default=None, max_length=30)
    derogation: bool = False
    derogation_justification: str | None = None
    emergency: bool = False
    commission_id: uuid.UUID | None = Field(default=None, foreign_key="aid_commission.id")
    submitted_on: date | None = None
    decided_on: date | None = None
    version: int = 1
    status_changed_at: datetime = Field(sa_column=instant_column())
    created_at: datetime = Field(sa_column=instant_column())
    updated_at: datetime = Field(sa_column=instant_column())


class AidRequestEvent(Table, table=True):
    """A dated, immutable event of a request: creation, edit, transition, payment."""

    __tablename__ = "aid_request_event"
    __scoping__: ClassVar[Scoping] = AttachedToPerson(column="beneficiary_id")

    id: int | None = Field(
        default=None, sa_column=Column(BigInteger, Identity(always=True), primary_key=True)
    )
    request_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("aid_request.id"), nullable=False, index=True)
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
    reason_code: str | None = Field(default=None, max_length=30)
    comment: str | None = None


class AidPayment(Table, table=True):
    """A payment of a granted request, by the grantor. A ``bon`` or a
    ``cheque_accompagnement`` carries a voucher number, unique and gap-free per grantor and
    year (:class:`AidVoucherCounter`); a cancelled voucher keeps its number."""

    __tablename__ = "aid_payment"
    __scoping__: ClassVar[Scoping] = OwnedByOrganisation(column="grantor_organisation_id")
    __table_args__ = (
        UniqueConstraint("grantor_organisation_id", "voucher_year", "voucher_sequence"),
        Index(
            "ix_aid_payment_grantor_organisation_id_paid_on", "grantor_organisation_id", "paid_on"
        ),
    )

    id: uuid.UUID = Field(primary_key=True)
    request_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("aid_request.id"), nullable=False, index=True)
    )
    grantor_organisation_id: uuid.UUID = Field(foreign_key="organisation.id")
    amount: Decimal = Field(sa_column=_amount())
    form: str = Field(max_length=30)
    payee: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    paid_on: date
    voucher_number: str | None = Field(default=None, max_length=20)
    voucher_year: int | None = None
    voucher_sequence: int | None = None
    cancelled_at: datetime | None = Field(default=None, sa_column=instant_column(True))
    created_at: datetime = Field(sa_column=instant_column())
    created_by_user_id: uuid.UUID | None = None


class AidVoucherCounter(Table, table=True):
    """The last voucher number of a grantor for a year: incremented with
    ``UPDATE … RETURNING`` inside the payment's transaction, so concurrent payments queue on
    the row and a rolled-back payment gives its number back."""

    __tablename__ = "aid_voucher_counter"
    __scoping__: ClassVar[Scoping] = OwnedByOrganisation(column="organisation_id")

    organisation_id: uuid.UUID = Field(foreign_key="organisation.id", primary_key=True)
    year: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    last_number: int


class AidEnvelope(Table, table=True):
    """The budget a board votes for a year: per aid type, per category, or the whole year
    (neither). Granted, paid and remaining are computed from the requests and payments, so
    they cannot drift from them."""

    __tablename__ = "aid_envelope"
    __scoping__: ClassVar[Scoping] = OwnedByOrganisation(column="organisation_id")
    __table_args__ = (Index("ix_aid_envelope_organisation_id_year", "organisation_id", "year"),)

    id: uuid.UUID = Field(primary_key=True)
    organisation_id: uuid.UUID = Field(foreign_key="organisation.id")
    year: int
    category: str | None = Field(default=None, max_length=20)
    aid_code: str | None = Field(default=None, max_length=60)
    amount: Decimal = Field(sa_column=_amount())
    updated_at: datetime = Field(sa_column=instant_column())


class AidCommission(Table, table=True):
    """A session of the grantor's board deciding the requests on its agenda."""

    __tablename__ = "aid_commission"
    __scoping__: ClassVar[Scoping] = OwnedByOrganisation(column="organisation_id")

    id: uuid.UUID = Field(primary_key=True)
    organisation_id: uuid.UUID = Field(foreign_key="organisation.id", index=True)
    meeting_on: date
    body: str = Field(max_length=40)
    status: str = Field(max_length=10)
    closed_at: datetime | None = Field(default=None, sa_column=instant_column(True))
    created_at: datetime = Field(sa_column=instant_column())
