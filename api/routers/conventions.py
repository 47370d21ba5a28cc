"""Conventions de délégation between partners."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query, status

from api.domain.conventions import service
from api.domain.conventions.deps import ConventionsContext
from api.domain.conventions.rules import ConventionAction
from api.domain.conventions.schemas import ConventionActionBody, ConventionCreate, ConventionRead
from api.http.deps import TransactionRoute
from api.http.idempotency import Idempotent
from api.http.schemas import Cursor, Limit, Page

router = APIRouter(prefix="/v1/conventions", tags=["conventions"], route_class=TransactionRoute)

Status = Literal["proposed", "active", "suspended", "revoked"]
Action = Literal["accept", "withdraw", "suspend", "resume", "revoke"]


@router.post("", response_model=ConventionRead, status_code=status.HTTP_201_CREATED)
async def propose_convention(
    ctx: ConventionsContext, body: ConventionCreate, idem: Idempotent
) -> ConventionRead:
    """Propose a delegation of competences on communes to another partner (grantor's admin)."""
    return await idem.once(
        lambda: service.propose(ctx, body),
        location=lambda created: f"/v1/conventions/{created.id}",
    )


@router.get("", response_model=Page[ConventionRead])
async def list_conventions(
    ctx: ConventionsContext,
    side: Annotated[Literal["grantor", "grantee"] | None, Query()] = None,
    status: Annotated[Status | None, Query()] = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[ConventionRead]:
    """Conventions the caller's organisation is a party to."""
    return await service.list_conventions(ctx, side=side, status=status, cursor=cursor, limit=limit)


@router.get("/{convention_id}", response_model=ConventionRead)
async def get_convention(ctx: ConventionsContext, convention_id: uuid.UUID) -> ConventionRead:
    """Read a convention and its events (parties only)."""
    return await service.get(ctx, convention_id)


@router.post("/{convention_id}/{action}", response_model=ConventionRead)
async def act_on_convention(
    ctx: ConventionsContext,
    convention_id: uuid.UUID,
    action: Action,
    body: ConventionActionBody | None = None,
) -> ConventionRead:
    """Accept or withdraw (grantee), suspend, resume or revoke (grantor) a convention."""
    return await service.act(
        ctx, convention_id, ConventionAction(action), body.reason if body else None
    )
