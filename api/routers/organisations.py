"""Organisations (the partner directory), members, API clients, holdings."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, Response, status

from api.auth.deps import CurrentScope
from api.domain.catalogue import OrganisationKind
from api.domain.organisations.deps import Directory, Organisations
from api.domain.organisations.schemas import (
    ApiClientCreate,
    ApiClientCreated,
    ApiClientRead,
    HoldingRead,
    OrganisationCreate,
    OrganisationRead,
    OrganisationUpdate,
    RetentionRead,
    RetentionUpdate,
)
from api.domain.staff.deps import StaffContext
from api.domain.staff.rules import GrantStatus
from api.domain.staff.schemas import MemberCreate, MemberRead, MemberUpdate, RoleGrantRead
from api.http.deps import Session, TransactionRoute
from api.http.idempotency import Idempotent
from api.http.schemas import Cursor, Limit, Page
from api.problems import PreconditionRequired

router = APIRouter(prefix="/v1/organisations", tags=["organisations"], route_class=TransactionRoute)

CommuneQuery = Annotated[str | None, Query(pattern=r"^(\d{5}|2[AB]\d{3})$")]


@router.post("", response_model=OrganisationRead, status_code=status.HTTP_201_CREATED)
async def create_organisation(
    scope: CurrentScope, session: Session, body: OrganisationCreate, idem: Idempotent
) -> OrganisationRead:
    """Register a partner organisation (platform operator)."""
    return await idem.once(
        lambda: Organisations(scope, session).create(body),
        location=lambda created: f"/v1/organisations/{created.id}",
    )


@router.get("", response_model=Page[OrganisationRead])
async def list_organisations(
    session: Session,
    kind: OrganisationKind | None = None,
    commune: CommuneQuery = None,
    q: Annotated[str | None, Query(max_length=100)] = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[OrganisationRead]:
    """The partner directory: organisations by kind, commune served or name."""
    return await Directory(session).page(
        kind=kind, commune=commune, q=q, cursor=cursor, limit=limit
    )


@router.get("/{organisation_id}", response_model=OrganisationRead)
async def get_organisation(
    session: Session, organisation_id: uuid.UUID, response: Response
) -> OrganisationRead:
    """Read one organisation of the directory."""
    found, response.headers["ETag"] = await Directory(session).read(organisation_id)
    return found


@router.patch("/{organisation_id}", response_model=OrganisationRead)
async def update_organisation(
    scope: CurrentScope,
    session: Session,
    organisation_id: uuid.UUID,
    body: OrganisationUpdate,
    response: Response,
    if_match: Annotated[str | None, Header()] = None,
) -> OrganisationRead:
    """Edit an organisation's name (platform operator) or contact fields (its admin)."""
    if if_match is None:
        raise PreconditionRequired(detail="Send If-Match with the ETag you read.")
    updated, response.headers["ETag"] = await Organisations(scope, session).update(
        organisation_id, body, if_match
    )
    return updated


@router.get("/{organisation_id}/retention", response_model=RetentionRead)
async def get_retention(
    scope: CurrentScope, session: Session, organisation_id: uuid.UUID, response: Response
) -> RetentionRead:
    """How long the organisation keeps people's data and its audit trail (its dpo, admin)."""
    found, response.headers["ETag"] = await Organisations(scope, session).retention(organisation_id)
    return found


@router.patch("/{organisation_id}/retention", response_model=RetentionRead)
async def update_retention(
    scope: CurrentScope,
    session: Session,
    organisation_id: uuid.UUID,
    body: RetentionUpdate,
    response: Response,
    if_match: Annotated[str | None, Header()] = None,
) -> RetentionRead:
    """Set the retention periods, in months from 6 to 36 (If-Match with the ETag read)."""
    if if_match is None:
        raise PreconditionRequired(detail="Send If-Match with the ETag you read.")
    updated, response.headers["ETag"] = await Organisations(scope, session).set_retention(
        organisation_id, body, if_match
    )
    return updated


@router.get("/{organisation_id}/members", response_model=list[MemberRead])
async def list_members(staff: StaffContext, organisation_id: uuid.UUID) -> list[MemberRead]:
    """List the organisation's members, their roles and invitations (its admins)."""
    return await staff.list_members(organisation_id)


@router.post(
    "/{organisation_id}/members", response_model=MemberRead, status_code=status.HTTP_201_CREATED
)
async def add_member(
    staff: StaffContext,
    organisation_id: uuid.UUID,
    body: MemberCreate,
    idem: Idempotent,
) -> MemberRead:
    """Add a member with roles (its admins; the platform operator for the first admin only):
    someone working for another organisation is invited, and sensitive or dpo wait for a
    second admin (pending_grant)."""
    return await idem.once(lambda: staff.add_member(organisation_id, body))


@router.patch(
    "/{organisation_id}/members/{user_id}",
    response_model=MemberRead,
    responses={
        202: {
            "model": MemberRead,
            "description": "Part of the change (sensitive, "
            "dpo) waits for another admin: see pending_grant.",
        }
    },
)
async def update_member(
    staff: StaffContext,
    organisation_id: uuid.UUID,
    user_id: uuid.UUID,
    body: MemberUpdate,
    response: Response,
) -> MemberRead:
    """Change another member's roles; adding sensitive or dpo answers 202 until a second
    admin approves."""
    member, pending = await staff.set_member_roles(
        organisation_id, user_id, [str(r) for r in body.roles]
    )
    if pending:
        response.status_code = status.HTTP_202_ACCEPTED
    return member


@router.delete("/{organisation_id}/members/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
async def remove_member(
    staff: StaffContext, organisation_id: uuid.UUID, user_id: uuid.UUID
) -> None:
    """Remove a member: their tokens stop working at the next request."""
    await staff.remove_member(organisation_id, user_id)


@router.get("/{organisation_id}/role-grants", response_model=Page[RoleGrantRead])
async def list_role_grants(
    staff: StaffContext,
    organisation_id: uuid.UUID,
    status: GrantStatus | None = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[RoleGrantRead]:
    """Role grants (sensitive, dpo) asked by one admin, newest first (its admins)."""
    return await staff.list_grants(organisation_id, status, cursor, limit)


@router.post("/{organisation_id}/role-grants/{grant_id}/{decision}", response_model=RoleGrantRead)
async def decide_role_grant(
    staff: StaffContext,
    organisation_id: uuid.UUID,
    grant_id: uuid.UUID,
    decision: Literal["approve", "deny"],
) -> RoleGrantRead:
    """Approve (another admin than the one who asked) or deny a pending role grant."""
    return await staff.decide_grant(organisation_id, grant_id, approve=decision == "approve")


@router.post(
    "/{organisation_id}/api-clients",
    response_model=ApiClientCreated,
    status_code=status.HTTP_201_CREATED,
)
async def create_api_client(
    scope: CurrentScope,
    session: Session,
    organisation_id: uuid.UUID,
    body: ApiClientCreate,
    idem: Idempotent,
) -> ApiClientCreated:
    """Create a machine client; its secret is shown once."""
    return await idem.once(
        lambda: Organisations(scope, session).create_api_client(organisation_id, body)
    )


@router.get("/{organisation_id}/api-clients", response_model=list[ApiClientRead])
async def list_api_clients(
    scope: CurrentScope, session: Session, organisation_id: uuid.UUID
) -> list[ApiClientRead]:
    """List the organisation's active machine clients."""
    return await Organisations(scope, session).api_clients(organisation_id)


@router.delete("/{organisation_id}/api-clients/{client_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_api_client(
    scope: CurrentScope,
    session: Session,
    organisation_id: uuid.UUID,
    client_id: str,
) -> None:
    """Revoke a machine client at once."""
    await Organisations(scope, session).revoke_api_client(organisation_id, client_id)


@router.get("/{organisation_id}/holdings", response_model=Page[HoldingRead])
async def list_holdings(
    scope: CurrentScope,
    session: Session,
    organisation_id: uuid.UUID,
    competence: Annotated[str | None, Query(max_length=40)] = None,
    commune: CommuneQuery = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[HoldingRead]:
    """Where and why the organisation holds each competence today."""
    del scope  # any signed-in partner may read holdings
    return await Directory(session).holdings(
        organisation_id,
        competence=competence,
        commune=commune,
        cursor=cursor,
        limit=limit,
    )
