"""Conventions de délégation between partners."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query, status

from api.auth.deps import CurrentScope
from api.domain.conventions import service
from api.domain.conventions.rules import ConventionAction
from api.domain.organisations.repository import ConventionStore, OrganisationStore
from api.domain.organisations.schemas import ConventionActionBody, ConventionCreate, ConventionRead
from api.http.deps import Session
from api.http.idempotency import Idempotent
from api.http.schemas import Cursor, Limit, Page

router = APIRouter(prefix="/v1/conventions", tags=["conventions"])

Status = Literal["proposed", "active", "suspended", "revoked"]
Action = Literal["accept", "withdraw", "suspend", "resume", "revoke"]


@router.post("", response_model=ConventionRead, status_code=status.HTTP_201_CREATED)
async def propose_convention(
    scope: CurrentScope, session: Session, body: ConventionCreate, idem: Idempotent
) -> ConventionRead:
    """Propose a delegation of competences on communes to another partner (grantor's admin)."""
    return await idem.once(
        lambda: service.propose(
            scope, OrganisationStore(session), ConventionStore(session, scope), body
        ),
        location=lambda created: f"/v1/conventions/{created.id}",
    )


@router.get("", response_model=Page[ConventionRead])
async def list_conventions(
    scope: CurrentScope,
    session: Session,
    side: Annotated[Literal["grantor", "grantee"] | None, Query()] = None,
    status: Annotated[Status | None, Query()] = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[ConventionRead]:
    """Conventions the caller's organisation is a party to."""
    return await service.list_conventions(
        scope,
        OrganisationStore(session),
        ConventionStore(session, scope),
        side=side,
        status=status,
        cursor=cursor,
        limit=limit,
    )


@router.get("/{convention_id}", response_model=ConventionRead)
async def get_convention(
    scope: CurrentScope, session: Session, convention_id: uuid.UUID
) -> ConventionRead:
    """Read a convention and its events (parties only)."""
    return await service.get(
        scope, OrganisationStore(session), ConventionStore(session, scope), convention_id
    )


@router.post("/{convention_id}/{action}", response_model=ConventionRead)
async def act_on_convention(
    scope: CurrentScope,
    session: Session,
    convention_id: uuid.UUID,
    action: Action,
    body: ConventionActionBody | None = None,
) -> ConventionRead:
    """Accept or withdraw (grantee), suspend, resume or revoke (grantor) a convention."""
    return await service.act(
        scope,
        OrganisationStore(session),
        ConventionStore(session, scope),
        convention_id,
        ConventionAction(action),
        body.reason if body else None,
    )
