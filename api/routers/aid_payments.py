"""Payments of granted aid requests and the accounting export."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Query, Response

from api.domain.aids import payments as service
from api.domain.aids.deps import AidsContext
from api.domain.aids.schemas import IsoDate, PaymentCreate, PaymentList, PaymentRead
from api.http.deps import TransactionRoute
from api.http.idempotency import Idempotent

router = APIRouter(tags=["aids"], route_class=TransactionRoute)

CSV = "text/csv"


@router.post(
    "/v1/aid-requests/{request_id:uuid}/payments", response_model=PaymentRead, status_code=201
)
async def pay_request(
    ctx: AidsContext, request_id: uuid.UUID, body: PaymentCreate, idem: Idempotent
) -> PaymentRead:
    """Pay all or part of a granted aid (grantor); a bon gets its voucher number."""

    async def create() -> PaymentRead:
        return await service.pay(ctx, request_id, body)

    return await idem.once(create)


@router.post("/v1/aid-payments/{payment_id:uuid}/cancel", response_model=PaymentRead)
async def cancel_payment(ctx: AidsContext, payment_id: uuid.UUID) -> PaymentRead:
    """Cancel an unused voucher: its amount returns to the envelope, its number stays used."""
    return await service.cancel(ctx, payment_id)


@router.get(
    "/v1/aid-payments",
    response_model=PaymentList,
    responses={200: {"content": {CSV: {"schema": {"type": "string"}}}}},
)
async def list_payments(
    ctx: AidsContext,
    start: Annotated[IsoDate | None, Query(alias="from")] = None,
    end: Annotated[IsoDate | None, Query(alias="to")] = None,
    accept: Annotated[str | None, Header()] = None,
) -> PaymentList | Response:
    """Your organisation's payments of a period (`Accept: text/csv` for the accounting software)."""
    found = await service.between(ctx, start, end)
    if accept is not None and CSV in accept:
        return Response(
            content=service.as_csv(found),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="aides-paiements.csv"'},
        )
    return PaymentList(items=found)
