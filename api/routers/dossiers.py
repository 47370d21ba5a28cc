"""Legal-aid dossiers: instruction by a partner, decision by the legal holder."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Query, Response

from api.domain.dossiers import service
from api.domain.dossiers.deps import DossiersContext
from api.domain.dossiers.rules import DossierAction, DossierStatus
from api.domain.dossiers.schemas import (
    DecideBody,
    DossierActionBody,
    DossierCreate,
    DossierRead,
    DossierSummary,
    DossierUpdate,
)
from api.domain.dossiers.service import Dossiers
from api.http.deps import TransactionRoute
from api.http.idempotency import Idempotent
from api.http.schemas import Cursor, Limit, Page
from api.problems import PreconditionRequired

router = APIRouter(prefix="/v1/dossiers", tags=["dossiers"], route_class=TransactionRoute)


Ctx = DossiersContext
IfMatch = Annotated[str | None, Header(description="Optional: the ETag you read.")]


@router.post("", response_model=DossierRead, status_code=201)
async def create_dossier(
    ctx: Ctx, body: DossierCreate, response: Response, idem: Idempotent
) -> DossierRead:
    """Open a draft legal-aid dossier for a person you follow for the prestation."""

    async def create() -> DossierRead:
        created, tag = await service.create(ctx, body)
        response.headers["ETag"] = tag
        return created

    return await idem.once(create, location=lambda d: f"/v1/dossiers/{d.id}")


@router.get("", response_model=Page[DossierSummary])
async def list_dossiers(
    ctx: Ctx,
    prestation: Annotated[str | None, Query(max_length=40)] = None,
    status: DossierStatus | None = None,
    beneficiary_id: uuid.UUID | None = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[DossierSummary]:
    """Dossiers of the people you follow for their prestation."""
    return await service.page(
        ctx,
        prestation=prestation,
        status=status,
        beneficiary_id=beneficiary_id,
        cursor=cursor,
        limit=limit,
    )


@router.get("/{dossier_id:uuid}", response_model=DossierRead)
async def get_dossier(ctx: Ctx, dossier_id: uuid.UUID, response: Response) -> DossierRead:
    """A dossier with its instruction, decision, references and events."""
    dossier, tag = await service.read(ctx, dossier_id)
    response.headers["ETag"] = tag
    return dossier


@router.patch("/{dossier_id:uuid}", response_model=DossierRead)
async def update_dossier(
    ctx: Ctx,
    dossier_id: uuid.UUID,
    body: DossierUpdate,
    response: Response,
    if_match: Annotated[str | None, Header()] = None,
) -> DossierRead:
    """Edit the fields your side owns (If-Match with the ETag read)."""
    if if_match is None:
        raise PreconditionRequired(detail="Send If-Match with the ETag you read.")
    dossier, tag = await service.update(ctx, dossier_id, body, if_match)
    response.headers["ETag"] = tag
    return dossier


async def _act(
    ctx: Dossiers,
    dossier_id: uuid.UUID,
    action: DossierAction,
    body: DossierActionBody | DecideBody | None,
    if_match: str | None,
    response: Response,
) -> DossierRead:
    dossier, tag = await service.act(ctx, dossier_id, action, body or DossierActionBody(), if_match)
    response.headers["ETag"] = tag
    return dossier


@router.post("/{dossier_id:uuid}/submit", response_model=DossierRead)
async def submit_dossier(
    ctx: Ctx,
    dossier_id: uuid.UUID,
    response: Response,
    if_match: IfMatch = None,
    body: DossierActionBody | None = None,
) -> DossierRead:
    """Hand the instructed dossier to the deciding organisation (instructing side)."""
    return await _act(ctx, dossier_id, DossierAction.SUBMIT, body, if_match, response)


@router.post("/{dossier_id:uuid}/review", response_model=DossierRead)
async def review_dossier(
    ctx: Ctx,
    dossier_id: uuid.UUID,
    response: Response,
    if_match: IfMatch = None,
    body: DossierActionBody | None = None,
) -> DossierRead:
    """Take a submitted dossier under review (deciding side)."""
    return await _act(ctx, dossier_id, DossierAction.REVIEW, body, if_match, response)


@router.post("/{dossier_id:uuid}/decide", response_model=DossierRead)
async def decide_dossier(
    ctx: Ctx,
    dossier_id: uuid.UUID,
    body: DecideBody,
    response: Response,
    if_match: IfMatch = None,
) -> DossierRead:
    """Record the decision (legal holder, decideur role only)."""
    return await _act(ctx, dossier_id, DossierAction.DECIDE, body, if_match, response)


@router.post("/{dossier_id:uuid}/notify", response_model=DossierRead)
async def notify_dossier(
    ctx: Ctx,
    dossier_id: uuid.UUID,
    response: Response,
    if_match: IfMatch = None,
    body: DossierActionBody | None = None,
) -> DossierRead:
    """Record that the decision was notified to the person (deciding side)."""
    return await _act(ctx, dossier_id, DossierAction.NOTIFY, body, if_match, response)


@router.post("/{dossier_id:uuid}/close", response_model=DossierRead)
async def close_dossier(
    ctx: Ctx,
    dossier_id: uuid.UUID,
    response: Response,
    if_match: IfMatch = None,
    body: DossierActionBody | None = None,
) -> DossierRead:
    """Close a notified dossier (either side) or abandon a draft (instructing side)."""
    return await _act(ctx, dossier_id, DossierAction.CLOSE, body, if_match, response)
