"""Referrals between partners: send, answer, redirect, exchange messages."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, Response

from api.domain.referrals import service
from api.domain.referrals.deps import ReferralsContext
from api.domain.referrals.schemas import (
    MessageCreate,
    MessageRead,
    ReferralActionBody,
    ReferralCreate,
    ReferralRead,
    ReferralSummary,
)
from api.http.deps import TransactionRoute
from api.http.idempotency import Idempotent
from api.http.schemas import Cursor, Limit, Page, plain_json

router = APIRouter(prefix="/v1/referrals", tags=["referrals"], route_class=TransactionRoute)


Ctx = ReferralsContext
IfMatch = Annotated[str | None, Header(description="Optional: the ETag you read.")]
ACTIONS = Literal[
    "acknowledge",
    "accept",
    "decline",
    "redirect",
    "withdraw",
    "start",
    "hold",
    "resume",
    "complete",
    "not-complete",
    "cancel",
]


@router.post(
    "",
    response_model=ReferralRead,
    response_model_exclude_unset=True,
    status_code=201,
)
async def send_referral(
    ctx: Ctx, body: ReferralCreate, response: Response, idem: Idempotent
) -> ReferralRead:
    """Send a referral to the partner competent for the person's commune."""

    async def send() -> ReferralRead:
        referral, response.headers["ETag"] = await service.send(ctx, body)
        return referral

    return await idem.once(send, location=lambda referral: f"/v1/referrals/{referral.id}")


@router.get("", response_model=Page[ReferralSummary])  # the contract; sent as plain_json
async def list_referrals(
    ctx: Ctx,
    box: Annotated[Literal["inbox", "outbox"], Query()] = "inbox",
    status: Annotated[str | None, Query(max_length=20)] = None,
    competence: Annotated[str | None, Query(max_length=40)] = None,
    beneficiary_id: uuid.UUID | None = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Response:
    """Referrals received (inbox) or sent (outbox), newest first."""
    page = await service.page(
        ctx,
        box=box,
        status=status,
        competence=competence,
        beneficiary_id=beneficiary_id,
        cursor=cursor,
        limit=limit,
    )
    return plain_json(page)


@router.get("/{referral_id:uuid}", response_model=ReferralRead, response_model_exclude_unset=True)
async def get_referral(ctx: Ctx, referral_id: uuid.UUID, response: Response) -> ReferralRead:
    """A referral, its events, and what the caller may see of the person now."""
    referral, tag = await service.read(ctx, referral_id)
    response.headers["ETag"] = tag
    return referral


@router.get("/{referral_id:uuid}/messages", response_model=list[MessageRead])
async def list_messages(ctx: Ctx, referral_id: uuid.UUID) -> list[MessageRead]:
    """Messages exchanged on a referral, oldest first."""
    return await service.messages(ctx, referral_id)


@router.post("/{referral_id:uuid}/messages", response_model=MessageRead, status_code=201)
async def add_message(
    ctx: Ctx, referral_id: uuid.UUID, body: MessageCreate, idem: Idempotent
) -> MessageRead:
    """Write to the other side of a referral."""
    return await idem.once(lambda: service.add_message(ctx, referral_id, body))


@router.post(
    "/{referral_id:uuid}/{action}",
    response_model=ReferralRead,
    response_model_exclude_unset=True,
    responses={409: {"description": "invalid-transition, with allowed_actions"}},
)
async def act_on_referral(
    ctx: Ctx,
    referral_id: uuid.UUID,
    action: ACTIONS,
    response: Response,
    if_match: IfMatch = None,
    body: ReferralActionBody | None = None,
) -> ReferralRead:
    """Move a referral along its life cycle (the side the action belongs to only)."""
    referral, tag = await service.act(
        ctx, referral_id, action, body or ReferralActionBody(), if_match
    )
    response.headers["ETag"] = tag
    return referral
