"""Territory and catalogue reads."""

from __future__ import annotations

import re
from dataclasses import dataclass

from api.db.tables import Commune
from api.domain.territories.repository import CommuneFilter, TerritoryRepository
from api.domain.territories.schemas import (
    CommuneRead,
    CommuneSummary,
    CompetenceRead,
    DepartementRead,
    EpciRead,
)
from api.domain.text import fold
from api.http.schemas import Page, as_int32, as_text, decode_keyset, encode_cursor
from api.problems import NotFound

COMMUNE_CODE = re.compile(r"^(\d{5}|2[AB]\d{3})$")
SIREN = re.compile(r"^\d{9}$")
DEPARTEMENT_CODE = re.compile(r"^(\d{2,3}|2[AB])$")


@dataclass(frozen=True)
class Territories:
    """What the use cases need, built for one request (api.domain.territories.deps)."""

    repo: TerritoryRepository


def _commune_read(commune: Commune) -> CommuneRead:
    return CommuneRead(
        code=commune.code,
        name=commune.name,
        departement=commune.departement_code,
        region=commune.region_code,
        epci=commune.epci_siren,
        siren=commune.siren,
        population=commune.population,
        postal_codes=list(commune.postal_codes),
    )


async def get_commune(ctx: Territories, code: str) -> CommuneRead:
    row = await ctx.repo.commune(code.upper()) if COMMUNE_CODE.match(code.upper()) else None
    if row is None:
        raise NotFound(detail=f"No current commune has the INSEE code {code!r}.")
    return _commune_read(row)


async def search_communes(
    ctx: Territories,
    *,
    q: str | None,
    departement: str | None,
    epci: str | None,
    cursor: str | None,
    limit: int,
) -> Page[CommuneRead]:
    where = CommuneFilter(
        folded_query=fold(q) if q and fold(q) else None, departement=departement, epci=epci
    )
    after = decode_keyset(cursor, as_int32, as_int32, as_text)
    found = await ctx.repo.communes(where, after, limit)
    page, more = found[:limit], len(found) > limit
    next_cursor = None
    if more:
        last = page[-1]
        next_cursor = encode_cursor([last.rank, -last.commune.population, last.commune.code])
    return Page[CommuneRead](
        items=[_commune_read(f.commune) for f in page], next_cursor=next_cursor
    )


async def get_epci(ctx: Territories, siren: str) -> EpciRead:
    found = await ctx.repo.epci(siren) if SIREN.match(siren) else None
    if found is None:
        raise NotFound(detail=f"No EPCI has the SIREN {siren!r}.")
    epci, members = found
    return EpciRead(
        siren=epci.siren,
        name=epci.name,
        type=epci.type,
        population=epci.population,
        members=[
            CommuneSummary(code=r.code, name=r.name, population=r.population) for r in members
        ],
    )


async def get_departement(ctx: Territories, code: str) -> DepartementRead:
    found = (
        await ctx.repo.departement(code.upper()) if DEPARTEMENT_CODE.match(code.upper()) else None
    )
    if found is None:
        raise NotFound(detail=f"No département has the code {code!r}.")
    departement = found.departement
    return DepartementRead(
        code=departement.code,
        name=departement.name,
        region=departement.region_code,
        chef_lieu=departement.chef_lieu,
        communes_count=found.communes_count,
        population=found.population,
    )


async def list_competences(ctx: Territories) -> list[CompetenceRead]:
    return [
        CompetenceRead.model_validate(c, from_attributes=True) for c in await ctx.repo.competences()
    ]
