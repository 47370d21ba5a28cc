"""Aid requests: instructed by the grantor or a delegate, decided by the grantor."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Response

from api.domain.aids import decisions
from api.domain.aids import requests as service
from api.domain.aids.deps import AidsContext
from api.domain.aids.rules.lifecycle import AidAction, AidStatus
from api.domain.aids.schemas import (
    ActionBody,
    AdjournBody,
    AidRequestCreate,
    AidRequestRead,
    AidRequestSummary,
    AidRequestUpdate,
    GrantBody,
    RefuseBody,
    ScheduleBody,
)
from api.http.deps import TransactionRoute
from api.http.idempotency import Idempotent
from api.http.schemas import Cursor, Limit, Page
from api.problems import PreconditionRequired

router = APIRouter(prefix="/v1/aid-requests", tags=["aids"], route_class=TransactionRoute)
IfMatch = Annotated[str | None, Header(description="Optional: the ETag you read.")]


@router.post("", response_model=AidRequestRead, status_code=201)
async def create_request(
    ctx: AidsContext, body: AidRequestCreate, response: Response, idem: Idempotent
) -> AidRequestRead:
    """Open a draft aid request for a person you follow for the aid's competence."""

    async def create() -> AidRequestRead:
        created, tag = await service.create(ctx, body)
        response.headers["ETag"] = tag
        return created

    return await idem.once(create, location=lambda r: f"/v1/aid-requests/{r.id}")


@router.get("", response_model=Page[AidRequestSummary])
async def list_requests(
    ctx: AidsContext,
    status: AidStatus | None = None,
    beneficiary_id: uuid.UUID | None = None,
    organisation_id: uuid.UUID | None = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[AidRequestSummary]:
    """Aid requests you instruct or grant, of the people you follow for them."""
    return await service.page(
        ctx,
        status=status,
        beneficiary_id=beneficiary_id,
        organisation_id=organisation_id,
        cursor=cursor,
        limit=limit,
    )


@router.get("/{request_id:uuid}", response_model=AidRequestRead)
async def read_request(
    ctx: AidsContext, request_id: uuid.UUID, response: Response
) -> AidRequestRead:
    """An aid request with its assessment, decision and events."""
    found, tag = await service.read(ctx, request_id)
    response.headers["ETag"] = tag
    return found


@router.patch("/{request_id:uuid}", response_model=AidRequestRead)
async def update_request(
    ctx: AidsContext,
    request_id: uuid.UUID,
    body: AidRequestUpdate,
    response: Response,
    if_match: Annotated[str | None, Header()] = None,
) -> AidRequestRead:
    """Edit a draft or adjourned request (instructor; If-Match with the ETag read)."""
    if if_match is None:
        raise PreconditionRequired(detail="Send If-Match with the ETag you read.")
    found, tag = await service.update(ctx, request_id, body, if_match)
    response.headers["ETag"] = tag
    return found


async def _act(
    ctx: AidsContext,
    request_id: uuid.UUID,
    action: AidAction,
    body: decisions.Body,
    if_match: str | None,
    response: Response,
) -> AidRequestRead:
    found, tag = await decisions.act(ctx, request_id, action, body, if_match)
    response.headers["ETag"] = tag
    return found


@router.post("/{request_id:uuid}/submit", response_model=AidRequestRead)
async def submit_request(
    ctx: AidsContext,
    request_id: uuid.UUID,
    response: Response,
    if_match: IfMatch = None,
    body: ActionBody | None = None,
) -> AidRequestRead:
    """Submit the request to the grantor: the budget is snapshotted and assessed (instructor)."""
    return await _act(ctx, request_id, AidAction.SUBMIT, body or ActionBody(), if_match, response)


@router.post("/{request_id:uuid}/schedule", response_model=AidRequestRead)
async def schedule_request(
    ctx: AidsContext,
    request_id: uuid.UUID,
    body: ScheduleBody,
    response: Response,
    if_match: IfMatch = None,
) -> AidRequestRead:
    """Place a submitted request on a commission session's agenda (grantor)."""
    return await _act(ctx, request_id, AidAction.SCHEDULE, body, if_match, response)


@router.post("/{request_id:uuid}/grant", response_model=AidRequestRead)
async def grant_request(
    ctx: AidsContext,
    request_id: uuid.UUID,
    body: GrantBody,
    response: Response,
    if_match: IfMatch = None,
) -> AidRequestRead:
    """Grant the aid (grantor, at the required level; a breach only by derogation)."""
    return await _act(ctx, request_id, AidAction.GRANT, body, if_match, response)


@router.post("/{request_id:uuid}/refuse", response_model=AidRequestRead)
async def refuse_request(
    ctx: AidsContext,
    request_id: uuid.UUID,
    body: RefuseBody,
    response: Response,
    if_match: IfMatch = None,
) -> AidRequestRead:
    """Refuse the aid with a reason code (grantor, at the required level)."""
    return await _act(ctx, request_id, AidAction.REFUSE, body, if_match, response)


@router.post("/{request_id:uuid}/adjourn", response_model=AidRequestRead)
async def adjourn_request(
    ctx: AidsContext,
    request_id: uuid.UUID,
    body: AdjournBody,
    response: Response,
    if_match: IfMatch = None,
) -> AidRequestRead:
    """Ask for more information before deciding (grantor); the instructor resubmits."""
    return await _act(ctx, request_id, AidAction.ADJOURN, body, if_match, response)


@router.post("/{request_id:uuid}/cancel", response_model=AidRequestRead)
async def cancel_request(
    ctx: AidsContext,
    request_id: uuid.UUID,
    response: Response,
    if_match: IfMatch = None,
    body: ActionBody | None = None,
) -> AidRequestRead:
    """Withdraw a draft or submitted request (instructor)."""
    return await _act(ctx, request_id, AidAction.CANCEL, body or ActionBody(), if_match, response)
