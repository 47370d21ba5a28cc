"""Territory and catalogue reads."""

from __future__ import annotations

import re

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


def _commune_read(row: object) -> CommuneRead:
    m = row._mapping  # type: ignore[attr-defined]
    return CommuneRead(
        code=m["code"],
        name=m["name"],
        departement=m["departement_code"],
        region=m["region_code"],
        epci=m["epci_siren"],
        siren=m["siren"],
        population=m["population"],
        postal_codes=list(m["postal_codes"]),
    )


async def get_commune(repo: TerritoryRepository, code: str) -> CommuneRead:
    row = await repo.commune(code.upper()) if COMMUNE_CODE.match(code.upper()) else None
    if row is None:
        raise NotFound(detail=f"No current commune has the INSEE code {code!r}.")
    return _commune_read(row)


async def search_communes(
    repo: TerritoryRepository,
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
    rows = await repo.communes(where, decode_keyset(cursor, as_int32, as_int32, as_text), limit)
    page, more = rows[:limit], len(rows) > limit
    next_cursor = None
    if more:
        last = page[-1]._mapping
        next_cursor = encode_cursor([last["rank"], -last["population"], last["code"]])
    return Page[CommuneRead](items=[_commune_read(r) for r in page], next_cursor=next_cursor)


async def get_epci(repo: TerritoryRepository, siren: str) -> EpciRead:
    found = await repo.epci(siren) if SIREN.match(siren) else None
    if found is None:
        raise NotFound(detail=f"No EPCI has the SIREN {siren!r}.")
    epci, members = found
    m = epci._mapping
    return EpciRead(
        siren=m["siren"],
        name=m["name"],
        type=m["type"],
        population=m["population"],
        members=[
            CommuneSummary(code=r.code, name=r.name, population=r.population) for r in members
        ],
    )


async def get_departement(repo: TerritoryRepository, code: str) -> DepartementRead:
    row = await repo.departement(code.upper()) if DEPARTEMENT_CODE.match(code.upper()) else None
    if row is None:
        raise NotFound(detail=f"No département has the code {code!r}.")
    m = row._mapping
    return DepartementRead(
        code=m["code"],
        name=m["name"],
        region=m["region_code"],
        chef_lieu=m["chef_lieu"],
        communes_count=m["communes_count"],
        population=m["population"],
    )


async def list_competences(repo: TerritoryRepository) -> list[CompetenceRead]:
    return [CompetenceRead.model_validate(r._mapping) for r in await repo.competences()]
