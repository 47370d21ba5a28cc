from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import EmailStr, Field, StringConstraints

from api.domain.audit.schemas import AccessLogItem
from api.domain.organisations.schemas import CommuneCode
from api.http.schemas import Input, Output

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Sex = Literal["F", "M", "X"]


class Address(Input):
    line1: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    line2: Annotated[str, StringConstraints(max_length=200)] | None = None
    postal_code: Annotated[str, StringConstraints(pattern=r"^\d{5}$")]


class BeneficiaryCreate(Input):
    competence: Annotated[str, StringConstraints(max_length=40)]
    birth_name: Text
    usage_name: Text | None = None
    first_names: Text
    birth_date: date
    sex: Sex
    birth_place: Text | None = None
    nir: Annotated[str, StringConstraints(max_length=21)] | None = None
    nir_missing_reason: Text | None = None
    commune: CommuneCode | None = None
    domiciliation_organisation_id: uuid.UUID | None = None
    address: Address | None = None
    phone: Annotated[str, StringConstraints(max_length=30)] | None = None
    email: EmailStr | None = None
    situation: dict[str, Any] | None = Field(default=None, max_length=50)
    force_create: bool = False
    justification: (
        Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] | None
    ) = None


class BeneficiaryUpdate(Input):
    birth_name: Text | None = None
    usage_name: Text | None = None
    first_names: Text | None = None
    birth_date: date | None = None
    sex: Sex | None = None
    birth_place: Text | None = None
    nir: Annotated[str, StringConstraints(max_length=21)] | None = None
    nir_missing_reason: Text | None = None
    commune: CommuneCode | None = None
    address: Address | None = None
    phone: Annotated[str, StringConstraints(max_length=30)] | None = None
    email: EmailStr | None = None
    situation: dict[str, Any] | None = Field(default=None, max_length=50)


class BeneficiaryRead(Output):
    """Fields outside the caller's data categories are absent."""

    id: uuid.UUID
    categories: list[str]
    birth_name: str | None = None
    usage_name: str | None = None
    first_names: str | None = None
    birth_date: date | None = None
    sex: str | None = None
    birth_place: str | None = None
    nir: str | None = None
    nir_missing_reason: str | None = None
    commune: str | None = None
    domiciliation_organisation_id: uuid.UUID | None = None
    address: dict[str, Any] | None = None
    phone: str | None = None
    email: str | None = None
    situation: dict[str, Any] | None = None
    last_contact_at: datetime | None = None


class CommuneRef(Output):
    code: str
    name: str


class Follower(Output):
    organisation_id: uuid.UUID
    organisation_name: str
    competence: str


class Preview(Output):
    id: uuid.UUID
    last_name: str
    first_names: str
    birth_year: int
    commune: CommuneRef | None
    followed_by: list[Follower]
    attached: bool


class PreviewList(Output):
    items: list[Preview]


class CareTeamMemberRead(Output):
    id: uuid.UUID
    organisation_id: uuid.UUID
    organisation_name: str
    competence: str
    referent_user_id: uuid.UUID | None
    team_role: str
    source: str
    started_at: datetime
    ended_at: datetime | None
    end_reason: str | None


class CareTeamJoin(Input):
    competence: Annotated[str, StringConstraints(max_length=40)]
    justification: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=10, max_length=2000)
    ]


class CareTeamLeave(Input):
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


Relation = Literal["demandeur", "conjoint", "enfant", "autre"]


class HouseholdMemberIn(Input):
    beneficiary_id: uuid.UUID | None = None
    first_name: Text | None = None
    birth_date: date | None = None
    relation: Relation


class Household(Input):
    members: list[HouseholdMemberIn] = Field(max_length=30)


class HouseholdRead(Output):
    members: list[HouseholdMemberIn]


Amount = Annotated[Decimal, Field(ge=0, le=1_000_000, max_digits=12, decimal_places=2)]


class BudgetLineIn(Input):
    type: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60)]
    monthly_amount: Amount


class Budget(Input):
    resources: list[BudgetLineIn] = Field(default_factory=list, max_length=50)
    charges: list[BudgetLineIn] = Field(default_factory=list, max_length=50)


class BudgetRead(Output):
    resources: list[BudgetLineIn]
    charges: list[BudgetLineIn]
    household_size: int
    remaining_income_per_person_per_day: Decimal


class NoteCreate(Input):
    competence: Annotated[str, StringConstraints(max_length=40)]
    visibility: Literal["private", "organisation", "team"]
    body: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20_000)]


class NoteRead(Output):
    id: uuid.UUID
    organisation_id: uuid.UUID
    organisation_name: str
    author_user_id: uuid.UUID | None
    competence: str
    visibility: str
    body: str
    created_at: datetime


RequestableCategory = Literal["identity", "contact", "household", "resources", "situation", "notes"]


def _identity_and_contact() -> list[RequestableCategory]:
    return ["identity", "contact"]


class AccessRequestCreate(Input):
    competence: Annotated[str, StringConstraints(max_length=40)]
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=10, max_length=2000)]
    categories: list[RequestableCategory] = Field(
        default_factory=_identity_and_contact, min_length=1, max_length=6
    )


class AccessRequestDecision(Input):
    reason: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] | None = None


class AccessRequestRead(Output):
    id: uuid.UUID
    beneficiary_id: uuid.UUID
    organisation_id: uuid.UUID
    competence: str
    reason: str
    categories: list[str]
    status: str
    created_at: datetime
    expires_at: datetime
    decided_at: datetime | None
    decision_reason: str | None


# information notices and consents -------------------------------------------------------

Purpose = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=2000)]


class ConsentCreate(Input):
    """An information notice given to the person, or their consent; ``organisation_id``
    and/or ``competence`` say which sharing it covers (a consent names at least one)."""

    kind: Literal["information", "consent"]
    organisation_id: uuid.UUID | None = None
    competence: Annotated[str, StringConstraints(max_length=40)] | None = None
    purpose: Purpose
    method: Literal["oral", "ecrit", "numerique"]
    given_on: date


class ConsentWithdrawal(Input):
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


class ConsentRead(Output):
    id: uuid.UUID
    beneficiary_id: uuid.UUID
    kind: str
    organisation_id: uuid.UUID | None
    competence: str | None
    purpose: str
    method: str
    given_on: date
    withdrawn_on: date | None
    withdrawal_reason: str | None
    recorded_by_organisation_id: uuid.UUID
    recorded_by_user_id: uuid.UUID | None
    created_at: datetime
    #: valid now: given, and not withdrawn
    active: bool


class ConsentWithdrawn(ConsentRead):
    #: open referrals the consent covered, cancelled with the withdrawal
    cancelled_referrals: list[uuid.UUID]


# timeline -------------------------------------------------------------------------------


class TimelineItem(Output):
    """One event of the person's file: ids and codes, never a free-text body."""

    at: datetime
    #: ``note``, ``care_team.joined``, ``care_team.left``, ``consent.given``,
    #: ``consent.withdrawn``, ``information.given``, ``information.withdrawn``,
    #: ``access_request.created``, ``access_request.decided``…
    type: str
    #: the record the event is about (note, membership, consent, access request…)
    id: uuid.UUID
    #: the organisation that acted
    organisation_id: uuid.UUID | None = None
    competence: str | None = None
    status: str | None = None
    #: further codes of the event (visibility, team role, method, recipient…)
    codes: dict[str, str] = Field(default_factory=dict)


# merge and right of access --------------------------------------------------------------


class MergeRequest(Input):
    duplicate_id: uuid.UUID
    justification: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=10, max_length=2000)
    ]


class MergeRead(Output):
    beneficiary: BeneficiaryRead
    duplicate_id: uuid.UUID
    #: rows re-pointed from the duplicate, per ``table.column``
    moved: dict[str, int]


class ExportRead(Output):
    """Everything held about the person across partners (right of access, RGPD art. 15)."""

    beneficiary_id: uuid.UUID
    generated_at: datetime
    purpose: str
    #: the record with every field, NIR in clear
    record: BeneficiaryRead
    household: list[dict[str, Any]]
    budget: list[dict[str, Any]]
    care_team: list[dict[str, Any]]
    notes: list[dict[str, Any]]
    consents: list[dict[str, Any]]
    access_requests: list[dict[str, Any]]
    #: every access to the person's data, by every organisation, newest first
    access_log: list[AccessLogItem]
    #: rows of every other table referring to the person, per ``table.column`` (and
    #: ``table.column<parent.column`` for rows referring to those rows)
    other: dict[str, list[dict[str, Any]]]
