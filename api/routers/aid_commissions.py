"""Commission sessions: agenda, decisions per item, closing, minutes naming no one."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Response

from api.domain.aids import commissions as service
from api.domain.aids.deps import AidsContext
from api.domain.aids.schemas import (
    CommissionCreate,
    CommissionDecisions,
    CommissionRead,
    DecisionsReport,
)
from api.http.deps import TransactionRoute
from api.http.idempotency import Idempotent

router = APIRouter(prefix="/v1/aid-commissions", tags=["aids"], route_class=TransactionRoute)


@router.post("", response_model=CommissionRead, status_code=201)
async def create_commission(
    ctx: AidsContext, body: CommissionCreate, idem: Idempotent
) -> CommissionRead:
    """Open a commission session of your organisation."""

    async def create() -> CommissionRead:
        return await service.create(ctx, body)

    return await idem.once(create, location=lambda c: f"/v1/aid-commissions/{c.id}")


@router.get("/{commission_id:uuid}", response_model=CommissionRead)
async def read_commission(ctx: AidsContext, commission_id: uuid.UUID) -> CommissionRead:
    """A session with its agenda."""
    return await service.read(ctx, commission_id)


@router.post("/{commission_id:uuid}/decisions", response_model=DecisionsReport)
async def record_decisions(
    ctx: AidsContext, commission_id: uuid.UUID, body: CommissionDecisions
) -> DecisionsReport:
    """Record the session's decisions, one report line per item (decideur)."""
    return await service.decide(ctx, commission_id, body)


@router.post("/{commission_id:uuid}/close", response_model=CommissionRead)
async def close_commission(ctx: AidsContext, commission_id: uuid.UUID) -> CommissionRead:
    """Close the session (decideur)."""
    return await service.close(ctx, commission_id)


@router.get(
    "/{commission_id:uuid}/minutes",
    response_class=Response,
    responses={200: {"content": {"text/html": {}, "text/csv": {}}}},
)
async def commission_minutes(
    ctx: AidsContext,
    commission_id: uuid.UUID,
    accept: Annotated[str | None, Header()] = None,
) -> Response:
    """The minutes (procès-verbal), naming no one: `text/html` or `text/csv`."""
    session, rows = await service.minutes(ctx, commission_id)
    if accept is not None and "text/csv" in accept:
        return Response(service.minutes_csv(rows), media_type="text/csv; charset=utf-8")
    return Response(service.minutes_html(session, rows), media_type="text/html; charset=utf-8")
