"""How the territories router gets its (public) reads, built from the request's session."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from api.domain.territories.repository import TerritoryRepository
from api.domain.territories.service import Territories
from api.http.deps import Session


async def territories_context(session: Session) -> Territories:
    return Territories(repo=TerritoryRepository(session))


TerritoriesContext = Annotated[Territories, Depends(territories_context)]
