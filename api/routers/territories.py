"""Public reference reads: communes, EPCI, départements, competence catalogue."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.domain.territories import service
from api.domain.territories.deps import TerritoriesContext
from api.domain.territories.schemas import CommuneRead, CompetenceRead, DepartementRead, EpciRead
from api.http.deps import TransactionRoute
from api.http.schemas import Cursor, Limit, Page

router = APIRouter(prefix="/v1", tags=["territories"], route_class=TransactionRoute)


@router.get("/territories/communes", response_model=Page[CommuneRead])
async def search_communes(
    ctx: TerritoriesContext,
    q: Annotated[
        str | None, Query(max_length=100, description="Name, accents and case ignored.")
    ] = None,
    departement: Annotated[
        str | None, Query(pattern=r"^(\d{2,3}|2[AB])$", description="Département code.")
    ] = None,
    epci: Annotated[str | None, Query(pattern=r"^\d{9}$", description="EPCI SIREN.")] = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[CommuneRead]:
    """Search current communes by name, département or EPCI."""
    return await service.search_communes(
        ctx,
        q=q,
        departement=departement,
        epci=epci,
        cursor=cursor,
        limit=limit,
    )


@router.get("/territories/communes/{code}", response_model=CommuneRead)
async def get_commune(ctx: TerritoriesContext, code: str) -> CommuneRead:
    """Read a commune by its INSEE code."""
    return await service.get_commune(ctx, code)


@router.get("/territories/epci/{siren}", response_model=EpciRead)
async def get_epci(ctx: TerritoriesContext, siren: str) -> EpciRead:
    """Read an EPCI and its member communes."""
    return await service.get_epci(ctx, siren)


@router.get("/territories/departements/{code}", response_model=DepartementRead)
async def get_departement(ctx: TerritoriesContext, code: str) -> DepartementRead:
    """Read a département with its number of communes and population."""
    return await service.get_departement(ctx, code)


@router.get("/competences", response_model=list[CompetenceRead], tags=["competences"])
async def list_competences(ctx: TerritoriesContext) -> list[CompetenceRead]:
    """List the competence catalogue: legal holders, delegability, sensitivity."""
    return await service.list_competences(ctx)
