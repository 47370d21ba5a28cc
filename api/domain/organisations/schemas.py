from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import EmailStr, Field, StringConstraints

from api.auth.permissions import ClientScope
from api.domain.catalogue import OrganisationKind
from api.http.schemas import Input, Output

CommuneCode = Annotated[str, StringConstraints(pattern=r"^(\d{5}|2[AB]\d{3})$")]
DepartementCode = Annotated[str, StringConstraints(pattern=r"^(\d{2,3}|2[AB])$")]
Siren = Annotated[str, StringConstraints(pattern=r"^\d{9}$")]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


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


class MeRead(Output):
    kind: Literal["user", "client"]
    id: uuid.UUID
    email: str | None = None
    organisation: OrganisationRef
    roles: list[str]
    scopes: list[str]
