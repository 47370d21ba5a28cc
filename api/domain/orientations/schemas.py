"""Orientations: request and response shapes (api.md)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import Field

from api.domain.organisations.schemas import OrganisationRef
from api.domain.referrals.schemas import Code, Competence, LongText
from api.http.schemas import Input, Output


class OrientationCreate(Input):
    beneficiary_id: uuid.UUID
    competence: Competence
    target_organisation_id: uuid.UUID | None = Field(
        default=None, description="Resolved from the directory when absent (delegates first)."
    )
    category: Literal["sociale", "professionnelle", "socio_professionnelle"] | None = None
    reason: LongText
    referent_user_id: uuid.UUID | None = None


class OrientationActionBody(Input):
    reason_code: Code | None = None
    comment: LongText | None = None


class OrientationEventRead(Output):
    at: datetime
    from_status: str | None
    to_status: str
    organisation: OrganisationRef | None
    actor_user_id: uuid.UUID | None
    actor_client_id: uuid.UUID | None
    acting_agent: str | None
    reason_code: str | None
    comment: str | None


class OrientationRead(Output):
    id: uuid.UUID
    beneficiary_id: uuid.UUID
    competence: str
    issuer: OrganisationRef
    target: OrganisationRef
    category: str | None
    reason: str
    referent_user_id: uuid.UUID | None
    previous_orientation_id: uuid.UUID | None
    status: str
    created_at: datetime
    updated_at: datetime
    allowed_actions: list[str]
    events: list[OrientationEventRead]
