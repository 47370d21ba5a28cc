"""What the conventions endpoints take and answer."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from api.domain.catalogue import DataCategory
from api.domain.organisations.schemas import CommuneCode, OrganisationRef
from api.http.schemas import Input, Output

Reason = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)]


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
