"""What the members, role grants and invitations endpoints take and answer."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import EmailStr, Field, StringConstraints

from api.auth.permissions import Role
from api.domain.organisations.schemas import Name, OrganisationRef
from api.http.schemas import Input, Output


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
