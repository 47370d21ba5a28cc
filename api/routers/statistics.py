"""Steering statistics (ABS): aggregates of every partner's records on a territory."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Response
from starlette.concurrency import run_in_threadpool

from api.domain import clock
from api.domain.statistics import render
from api.domain.statistics.cells import Period
from api.domain.statistics.deps import StatisticsService
from api.domain.statistics.rules import MEASURES, choose_media
from api.domain.statistics.schemas import StatisticsRead, UnmetNeedsRead
from api.http.deps import TransactionRoute

router = APIRouter(prefix="/v1/statistics", tags=["statistics"], route_class=TransactionRoute)

Territory = Annotated[
    str,
    Query(
        max_length=30,
        description="commune:<INSEE>, epci:<SIREN> or departement:<code>.",
        examples=["departement:80"],
    ),
]
From = Annotated[
    date | None,
    Query(alias="from", description="First day (its month counts); default 1 January."),
]
To = Annotated[
    date | None, Query(alias="to", description="Last day (its month counts); default today.")
]


def _period(first: date | None, last: date | None) -> Period:
    today = clock.today()
    return Period(first or today.replace(month=1, day=1), last or today)


_MEDIA = {
    "text/html": ("text/html; charset=utf-8", render.html),
    "application/pdf": ("application/pdf", render.pdf),
    "text/csv": ("text/csv; charset=utf-8", render.csv_text),
}


@router.get(
    "/report",
    response_class=Response,
    responses={
        200: {
            "description": "The yearly ABS document.",
            "content": {"text/html": {}, "application/pdf": {}, "text/csv": {}},
        },
        406: {"description": "not-acceptable: text/html, application/pdf or text/csv"},
    },
)
async def read_report(
    statistics: StatisticsService,
    territory: Territory,
    year: Annotated[int, Query(ge=2000, le=2100, description="The year studied.")],
    accept: Annotated[str | None, Header()] = None,
) -> Response:
    """Produce the yearly analyse des besoins sociaux of a territory (HTML, PDF or CSV)."""
    media = choose_media(accept, list(_MEDIA))
    document = await statistics.report(territory, year)
    content_type, draw = _MEDIA[media]
    body = await run_in_threadpool(draw, document)  # matplotlib is CPU-bound
    filename = f"abs-{year}-{territory.replace(':', '-')}.{media.split('/')[1]}"
    return Response(
        body,
        media_type=content_type,
        headers={"Content-Disposition": f'inline; filename="{filename}"', "Vary": "Accept"},
    )


@router.get("/unmet-needs", response_model=UnmetNeedsRead, response_model_exclude_unset=True)
async def read_unmet_needs(
    statistics: StatisticsService, territory: Territory, first: From = None, last: To = None
) -> UnmetNeedsRead:
    """List the needs left unmet on a territory and where nobody holds a competence."""
    return await statistics.unmet_needs(territory, _period(first, last))


@router.get(
    "/{measure}",
    response_model=StatisticsRead,
    response_model_exclude_unset=True,
)
async def read_measure(
    statistics: StatisticsService,
    measure: Annotated[str, Path(description=f"One of {', '.join(MEASURES)}.")],
    territory: Territory,
    first: From = None,
    last: To = None,
    by: Annotated[
        str | None,
        Query(max_length=100, description="Up to three dimensions, comma-separated."),
    ] = None,
) -> StatisticsRead:
    """Count a measure over a territory and a period, broken down by up to three dimensions."""
    dimensions = [d.strip() for d in by.split(",") if d.strip()] if by else []
    return await statistics.measure(measure, territory, _period(first, last), dimensions)
