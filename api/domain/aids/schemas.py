"""Request and response bodies of aides facultatives (api.md "Aides facultatives")."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, Field

from api.domain.aids.rules.codes import (
    CENT,
    MAX_AMOUNT,
    AidCategory,
    AidCompetence,
    AidForm,
    RefusalReason,
)
from api.http.schemas import Input, Output
from api.problems import FieldError, ValidationFailed


def _cents(value: Decimal) -> Decimal:
    return value.quantize(CENT)


def _iso_date(value: object) -> object:
    """A date is written YYYY-MM-DD: pydantic would also take a number (a Unix time)."""
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return value
    if isinstance(value, dt.date):
        return value
    raise ValueError("A date is written YYYY-MM-DD.")


IsoDate = Annotated[dt.date, BeforeValidator(_iso_date)]

Amount = Annotated[Decimal, Field(gt=0, le=MAX_AMOUNT, decimal_places=2), AfterValidator(_cents)]
Ceiling = Annotated[Decimal, Field(ge=0, le=MAX_AMOUNT, decimal_places=2), AfterValidator(_cents)]
Commune = Annotated[str, Field(pattern=r"^(\d{5}|2[AB]\d{3})$")]
Code = Annotated[str, Field(pattern=r"^[a-z0-9_]{1,60}$")]
Level = Literal["agent", "decideur", "commission"]


# règlements ---------------------------------------------------------------------------------


class TierIn(Input):
    up_to: Ceiling | None
    by: Level


class AidTypeIn(Input):
    code: Code
    label: Annotated[str, Field(min_length=1, max_length=200)]
    competence: AidCompetence
    category: AidCategory
    forms: Annotated[list[AidForm], Field(min_length=1, max_length=7)]
    max_per_request: Amount
    max_per_household_12_months: Ceiling | None = None
    max_requests_12_months: Annotated[int, Field(ge=1, le=365)] | None = None
    reste_a_vivre_max: (
        Annotated[Decimal, Field(ge=-1000, le=10000, decimal_places=2), AfterValidator(_cents)]
        | None
    ) = None
    residence_months_min: Annotated[int, Field(ge=0, le=600)] | None = None
    communes: Annotated[list[Commune], Field(max_length=1000)] | None = None
    decision: Annotated[list[TierIn], Field(min_length=1, max_length=10)]
    emergency_up_to: Ceiling | None = None


class AidRulesCreate(Input):
    title: Annotated[str, Field(min_length=1, max_length=200)]
    valid_from: IsoDate
    valid_until: IsoDate | None = None
    max_per_household_12_months: Ceiling | None = None
    aids: Annotated[list[AidTypeIn], Field(min_length=1, max_length=100)]


class TierRead(Output):
    up_to: Decimal | None
    by: Level


class AidTypeRead(Output):
    code: str
    label: str
    competence: str
    category: str
    forms: list[str]
    max_per_request: Decimal
    max_per_household_12_months: Decimal | None
    max_requests_12_months: int | None
    reste_a_vivre_max: Decimal | None
    residence_months_min: int | None
    communes: list[str]
    decision: list[TierRead]
    emergency_up_to: Decimal | None


class AidRulesSummary(Output):
    id: uuid.UUID
    organisation_id: uuid.UUID
    title: str
    valid_from: date
    valid_until: date | None
    created_at: datetime


class AidRulesRead(AidRulesSummary):
    max_per_household_12_months: Decimal | None
    aids: list[AidTypeRead]


class HouseholdIn(Input):
    adults: Annotated[int, Field(ge=1, le=20)]
    children_ages: Annotated[
        list[Annotated[int, Field(ge=0, le=25)]], Field(default_factory=list, max_length=20)
    ]
    monthly_resources: Ceiling
    monthly_charges: Ceiling


class CompareBody(Input):
    communes: Annotated[list[Commune], Field(min_length=1, max_length=1000)] | None = None
    epci: Annotated[str, Field(pattern=r"^\d{9}$")] | None = None
    departement: Annotated[str, Field(pattern=r"^(\d{2,3}|2[AB])$")] | None = None
    household: HouseholdIn
    category: AidCategory | None = None
    on: IsoDate | None = None


class AidRef(Output):
    code: str
    label: str
    category: str


class CompareItem(Output):
    commune: str
    organisation: uuid.UUID
    rules_id: uuid.UUID
    aid: AidRef
    eligible: bool
    max_amount: Decimal
    failing_rules: list[str]


class CompareRead(Output):
    reste_a_vivre_per_day_per_uc: Decimal
    uc: Decimal
    communes: int
    items: list[CompareItem]


# requests -----------------------------------------------------------------------------------


class Payee(Input):
    kind: Literal["person", "creditor"]
    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    siret: Annotated[str, Field(pattern=r"^\d{14}$")] | None = None
    reference: Annotated[str, Field(min_length=1, max_length=100)] | None = None


def check_payee(payee: Payee, pointer: str) -> None:
    """A creditor is named (the accountant pays it); the person is the request's."""
    if payee.kind == "creditor" and not payee.name:
        raise ValidationFailed(
            detail="Name the creditor to pay.",
            errors=[FieldError(f"{pointer}/name", "Required for a creditor.")],
        )


class AidRequestCreate(Input):
    beneficiary_id: uuid.UUID
    organisation_id: uuid.UUID | None = None
    aid_code: Code
    amount_asked: Amount
    form: AidForm
    payee: Payee = Payee(kind="person")
    reason: Annotated[str, Field(min_length=1, max_length=2000)]
    residence_months: Annotated[int, Field(ge=0, le=1200)] | None = None


class AidRequestUpdate(Input):
    amount_asked: Amount | None = None
    form: AidForm | None = None
    payee: Payee | None = None
    reason: Annotated[str, Field(min_length=1, max_length=2000)] | None = None


class Derogation(Input):
    justification: Annotated[str, Field(min_length=5, max_length=2000)]


class ActionBody(Input):
    comment: Annotated[str, Field(max_length=2000)] | None = None


class ScheduleBody(Input):
    session_id: uuid.UUID


class GrantBody(Input):
    amount: Amount
    form: AidForm | None = None
    derogation: Derogation | None = None
    comment: Annotated[str, Field(max_length=2000)] | None = None


class RefuseBody(Input):
    reason_code: RefusalReason
    comment: Annotated[str, Field(max_length=2000)] | None = None


class AdjournBody(Input):
    comment: Annotated[str, Field(min_length=1, max_length=2000)]


class CheckRead(Output):
    rule: str
    result: Literal["pass", "fail", "warn"]
    detail: str


class HistoryRead(Output):
    count: int
    amount: Decimal


class AssessmentRead(Output):
    reste_a_vivre_per_day_per_uc: Decimal
    uc: Decimal
    household_size: int
    monthly_resources: Decimal
    monthly_charges: Decimal
    checks: list[CheckRead]
    required_level: Level
    history_12_months: HistoryRead


class AidEventRead(Output):
    at: datetime
    action: str
    from_status: str | None
    to_status: str | None
    organisation_id: uuid.UUID
    reason_code: str | None
    comment: str | None


class AidRequestSummary(Output):
    id: uuid.UUID
    beneficiary_id: uuid.UUID
    grantor_organisation_id: uuid.UUID
    instructing_organisation_id: uuid.UUID
    aid_code: str
    category: str
    form: str
    amount_asked: Decimal
    amount_granted: Decimal | None
    status: str
    updated_at: datetime


class AidRequestRead(AidRequestSummary):
    rules_id: uuid.UUID
    competence: str
    payee: Payee
    reason: str
    commune_code: str
    required_level: str | None
    decision_level: str | None
    assessment: AssessmentRead | None
    refusal_reason: str | None
    derogation: bool
    derogation_justification: str | None
    emergency: bool
    commission_id: uuid.UUID | None
    submitted_on: date | None
    decided_on: date | None
    created_at: datetime
    allowed_actions: list[str]
    events: list[AidEventRead]


# payments, envelopes ------------------------------------------------------------------------


class PaymentCreate(Input):
    amount: Amount
    form: AidForm
    paid_on: IsoDate
    payee: Payee = Payee(kind="person")


class PaymentList(Output):
    items: list[PaymentRead]


class PaymentRead(Output):
    id: uuid.UUID
    request_id: uuid.UUID
    amount: Decimal
    form: str
    payee: Payee
    paid_on: date
    voucher_number: str | None
    cancelled_at: datetime | None
    created_at: datetime


class EnvelopeItemIn(Input):
    category: AidCategory | None = None
    aid_code: Code | None = None
    amount: Ceiling


class EnvelopesPut(Input):
    items: Annotated[list[EnvelopeItemIn], Field(max_length=100)]


class EnvelopeItemRead(Output):
    category: str | None
    aid_code: str | None
    amount: Decimal
    granted: Decimal
    paid: Decimal
    remaining: Decimal


class EnvelopesRead(Output):
    year: int
    items: list[EnvelopeItemRead]


# commissions --------------------------------------------------------------------------------


class CommissionCreate(Input):
    date: IsoDate
    body: Literal["commission_permanente", "conseil_administration"]


class AgendaItem(Output):
    request_id: uuid.UUID
    aid_code: str
    category: str
    amount_asked: Decimal
    status: str
    amount_granted: Decimal | None
    required_level: str | None
    emergency: bool


class CommissionRead(Output):
    id: uuid.UUID
    organisation_id: uuid.UUID
    date: dt.date
    body: str
    status: str
    closed_at: datetime | None
    agenda: list[AgendaItem]


class CommissionDecisionIn(Input):
    request_id: uuid.UUID
    decision: Literal["granted", "refused", "adjourned"]
    amount: Amount | None = None
    reason_code: RefusalReason | None = None
    comment: Annotated[str, Field(max_length=2000)] | None = None
    derogation: Derogation | None = None


class CommissionDecisions(Input):
    items: Annotated[list[CommissionDecisionIn], Field(min_length=1, max_length=500)]


class DecisionOutcome(Output):
    index: int
    request_id: uuid.UUID
    outcome: Literal["recorded", "error"]
    status: str | None = None
    problem: dict[str, object] | None = None


class DecisionsReport(Output):
    results: list[DecisionOutcome]
