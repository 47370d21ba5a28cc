"""Steering statistics (ABS): aggregates of every partner's records on a territory."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Path, Query

from api.domain import clock
from api.domain.statistics.deps import StatisticsService
from api.domain.statistics.rules import MEASURES
from api.domain.statistics.schemas import StatisticsRead, UnmetNeedsRead
from api.domain.statistics.service import Period

router = APIRouter(prefix="/v1/statistics", tags=["statistics"])

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
