"""Requests for access to a person's care team: ask, list, approve, deny."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query, status

from api.domain.people import access_requests as service
from api.domain.people.deps import AccessRequestsContext as Ctx
from api.domain.people.schemas import AccessRequestCreate, AccessRequestDecision, AccessRequestRead
from api.http.deps import TransactionRoute
from api.http.idempotency import Idempotent
from api.http.schemas import Cursor, Limit, Page

router = APIRouter(prefix="/v1", tags=["access requests"], route_class=TransactionRoute)


@router.post(
    "/beneficiaries/{beneficiary_id:uuid}/access-requests",
    response_model=AccessRequestRead,
    status_code=status.HTTP_201_CREATED,
)
async def ask_access(
    ctx: Ctx,
    beneficiary_id: uuid.UUID,
    body: AccessRequestCreate,
    idem: Idempotent,
) -> AccessRequestRead:
    """Ask the person's care team for access, for a competence you hold where they live."""
    return await idem.once(lambda: service.ask(ctx, beneficiary_id, body))


@router.get("/access-requests", response_model=Page[AccessRequestRead])
async def list_access_requests(
    ctx: Ctx,
    box: Annotated[Literal["inbox", "outbox"], Query()] = "inbox",
    status: Annotated[Literal["pending", "approved", "denied"] | None, Query()] = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[AccessRequestRead]:
    """Requests to decide (inbox) or sent (outbox)."""
    return await service.listing(ctx, box, status, cursor, limit)


@router.post("/access-requests/{request_id}/approve", response_model=AccessRequestRead)
async def approve_access(
    ctx: Ctx, request_id: uuid.UUID, body: AccessRequestDecision | None = None
) -> AccessRequestRead:
    """Approve: the requester joins the care team with the categories it asked for."""
    return await service.decide(ctx, request_id, True, body.reason if body else None)


@router.post("/access-requests/{request_id}/deny", response_model=AccessRequestRead)
async def deny_access(
    ctx: Ctx, request_id: uuid.UUID, body: AccessRequestDecision | None = None
) -> AccessRequestRead:
    """Deny the request."""
    return await service.decide(ctx, request_id, False, body.reason if body else None)
