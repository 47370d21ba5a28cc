from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import EmailStr, Field, StringConstraints

from api.auth.permissions import ClientScope, Role
from api.domain.catalogue import DataCategory, OrganisationKind
from api.http.schemas import Input, Output

CommuneCode = Annotated[str, StringConstraints(pattern=r"^(\d{5}|2[AB]\d{3})$")]
DepartementCode = Annotated[str, StringConstraints(pattern=r"^(\d{2,3}|2[AB])$")]
Siren = Annotated[str, StringConstraints(pattern=r"^\d{9}$")]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)]


class ServiceArea(Input):
    communes: list[CommuneCode] = Field(default_factory=list, max_length=5000)
    departements: list[DepartementCode] = Field(default_factory=list, max_length=120)


class OrganisationCreate(Input):
    name: Name
    kind: OrganisationKind
    siret: Annotated[str, StringConstraints(pattern=r"^\d{14}$")] | None = None
    commune: CommuneCode | None = None
    epci: Siren | None = None
    departement: DepartementCode | None = None
    service_area: ServiceArea | None = None
    email: EmailStr | None = None
    phone: Annotated[str, StringConstraints(max_length=30)] | None = None
    address: Annotated[str, StringConstraints(max_length=500)] | None = None


class OrganisationUpdate(Input):
    """Contact fields (the organisation's admin) and name (platform admin)."""

    name: Name | None = None
    siret: Annotated[str, StringConstraints(pattern=r"^\d{14}$")] | None = None
    email: EmailStr | None = None
    phone: Annotated[str, StringConstraints(max_length=30)] | None = None
    address: Annotated[str, StringConstraints(max_length=500)] | None = None


class TerritorySummary(Output):
    communes_count: int


class OrganisationRead(Output):
    id: uuid.UUID
    name: str
    kind: OrganisationKind
    siret: str | None
    commune: str | None
    epci: str | None
    departement: str | None
    service_area: ServiceArea
    email: str | None
    phone: str | None
    address: str | None
    territory: TerritorySummary


class OrganisationRef(Output):
    id: uuid.UUID
    name: str
    kind: OrganisationKind


RetentionMonths = Annotated[int, Field(ge=6, le=36)]


class RetentionUpdate(Input):
    """How long the organisation keeps people's data after their last contact, and its
    audit entries (domain.md §11: 24 and 12 months by default, 6 to 36)."""

    retention_months: RetentionMonths | None = None
    audit_retention_months: RetentionMonths | None = None


class RetentionRead(Output):
    retention_months: int
    audit_retention_months: int


class MemberCreate(Input):
    email: EmailStr
    full_name: Name
    roles: list[Role] = Field(min_length=1, max_length=7)
    password: Annotated[str, StringConstraints(min_length=12, max_length=200)] | None = None


class MemberUpdate(Input):
    roles: list[Role] = Field(min_length=1, max_length=7)


class RoleGrantRead(Output):
    """Roles one admin asked for a member, waiting for (or decided by) another admin."""

    id: uuid.UUID
    organisation_id: uuid.UUID
    user_id: uuid.UUID
    roles: list[Role]
    status: Literal["pending", "approved", "denied", "cancelled"]
    requested_by: uuid.UUID
    requested_at: datetime
    decided_by: uuid.UUID | None
    decided_at: datetime | None


class MemberRead(Output):
    id: uuid.UUID
    user_id: uuid.UUID
    organisation_id: uuid.UUID
    email: str
    full_name: str
    roles: list[Role]
    created_at: datetime
    #: ``invited``: the person works for another organisation and has not accepted yet
    status: Literal["active", "invited"]
    #: guarded roles (sensitive, dpo) asked for this member, until another admin decides
    pending_grant: RoleGrantRead | None = None


class InvitationRead(Output):
    """A membership another organisation offers the signed-in user."""

    organisation: OrganisationRef
    roles: list[Role]
    invited_at: datetime


class ApiClientCreate(Input):
    name: Name
    scopes: list[ClientScope] = Field(min_length=1, max_length=7)


class ApiClientRead(Output):
    client_id: str
    name: str
    scopes: list[ClientScope]
    created_at: datetime


class ApiClientCreated(ApiClientRead):
    client_secret: str = Field(description="Shown once: store it now.")


class HoldingRead(Output):
    competence: str
    commune: str
    source: Literal["law", "convention"]
    convention_id: uuid.UUID | None = None


class HolderRead(Output):
    organisation: OrganisationRef
    source: Literal["law", "convention"]
    convention_id: uuid.UUID | None = None


class CompetentRead(Output):
    competence: str
    commune: str
    on: date
    holders: list[HolderRead]


class ConventionCreate(Input):
    reference: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)
    ]
    grantee_id: uuid.UUID
    competences: list[str] = Field(min_length=1, max_length=20)
    communes: list[CommuneCode] | Literal["all"]
    data_categories: list[DataCategory] = Field(default_factory=list, max_length=11)
    valid_from: date
    valid_until: date | None = None


class ConventionActionBody(Input):
    reason: Reason | None = None


class ConventionEventRead(Output):
    at: datetime
    action: str
    from_status: str | None
    to_status: str
    actor_user_id: uuid.UUID | None
    actor_client_id: uuid.UUID | None = None
    acting_agent: str | None = None
    organisation_id: uuid.UUID
    reason: str | None


class ConventionRead(Output):
    id: uuid.UUID
    reference: str
    grantor: OrganisationRef
    grantee: OrganisationRef
    competences: list[str]
    communes: list[str]
    all_communes: bool
    data_categories: list[DataCategory]
    valid_from: date
    valid_until: date | None
    status: str
    in_force: bool
    allowed_actions: list[str]
    events: list[ConventionEventRead]
    created_at: datetime
    updated_at: datetime


class MeRead(Output):
    kind: Literal["user", "client"]
    id: uuid.UUID
    email: str | None = None
    organisation: OrganisationRef
    roles: list[str]
    scopes: list[str]
