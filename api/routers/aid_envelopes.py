"""Envelopes: the aid budget a board votes per year, and what is granted, paid, remaining."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Response

from api.domain.aids import envelopes as service
from api.domain.aids.deps import AidsContext
from api.domain.aids.schemas import EnvelopesPut, EnvelopesRead
from api.http.deps import TransactionRoute
from api.problems import PreconditionRequired

router = APIRouter(prefix="/v1/aid-envelopes", tags=["aids"], route_class=TransactionRoute)
Year = Annotated[int, Path(ge=2000, le=2100)]


@router.get("/{year}", response_model=EnvelopesRead)
async def read_envelopes(ctx: AidsContext, year: Year, response: Response) -> EnvelopesRead:
    """Your organisation's envelopes of a year: amount, granted, paid, remaining."""
    found, tag = await service.read(ctx, year)
    response.headers["ETag"] = tag
    return found


@router.put("/{year}", response_model=EnvelopesRead)
async def replace_envelopes(
    ctx: AidsContext,
    year: Year,
    body: EnvelopesPut,
    response: Response,
    if_match: Annotated[str | None, Header()] = None,
) -> EnvelopesRead:
    """Set the year's envelopes as voted (decideur or admin; If-Match with the ETag read)."""
    if if_match is None:
        raise PreconditionRequired(detail="Send If-Match with the ETag you read.")
    found, tag = await service.replace(ctx, year, body, if_match)
    response.headers["ETag"] = tag
    return found
