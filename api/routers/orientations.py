"""Orientations: a competent partner decides who should follow a person."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from api.domain.orientations import service
from api.domain.orientations.deps import OrientationsContext
from api.domain.orientations.schemas import (
    OrientationActionBody,
    OrientationCreate,
    OrientationRead,
)
from api.http.deps import TransactionRoute
from api.http.idempotency import Idempotent
from api.http.schemas import Cursor, Limit, Page

router = APIRouter(prefix="/v1/orientations", tags=["orientations"], route_class=TransactionRoute)


Ctx = OrientationsContext


@router.post("", response_model=OrientationRead, status_code=201)
async def issue_orientation(ctx: Ctx, body: OrientationCreate, idem: Idempotent) -> OrientationRead:
    """Orient a person to the partner competent for them (proposed until it accepts)."""
    return await idem.once(
        lambda: service.issue(ctx, body),
        location=lambda orientation: f"/v1/orientations/{orientation.id}",
    )


@router.get("", response_model=Page[OrientationRead])
async def list_orientations(
    ctx: Ctx,
    box: Annotated[Literal["inbox", "outbox"] | None, Query()] = None,
    status: Annotated[str | None, Query(max_length=20)] = None,
    beneficiary_id: uuid.UUID | None = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[OrientationRead]:
    """Orientations received, issued, or (without box) all those the caller may see."""
    return await service.page(
        ctx, box=box, status=status, beneficiary_id=beneficiary_id, cursor=cursor, limit=limit
    )


@router.get("/{orientation_id:uuid}", response_model=OrientationRead)
async def get_orientation(ctx: Ctx, orientation_id: uuid.UUID) -> OrientationRead:
    """An orientation and its events."""
    return await service.read(ctx, orientation_id)


@router.post(
    "/{orientation_id:uuid}/{action}",
    response_model=OrientationRead,
    responses={409: {"description": "invalid-transition, with allowed_actions"}},
)
async def act_on_orientation(
    ctx: Ctx,
    orientation_id: uuid.UUID,
    action: Literal["accept", "refuse", "cancel", "end"],
    body: OrientationActionBody | None = None,
) -> OrientationRead:
    """Accept, refuse, cancel or end an orientation (the side the action belongs to only)."""
    return await service.act(ctx, orientation_id, action, body or OrientationActionBody())
