"""How a router gets the statistics service: the one wiring of this noun."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from api.auth.deps import CurrentScope
from api.domain.statistics.repository import StatisticsRepository
from api.domain.statistics.service import Statistics
from api.http.deps import Session


def statistics_service(scope: CurrentScope, session: Session) -> Statistics:
    return Statistics(scope=scope, repository=StatisticsRepository(session, scope))


StatisticsService = Annotated[Statistics, Depends(statistics_service)]
