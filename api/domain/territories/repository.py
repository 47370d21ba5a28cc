"""Public reference reads: territories and the competence catalogue (no scope: no personal
or partner-private data)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from sqlalchemy import ColumnElement, case, func, literal, literal_column, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from api.db.tables import Commune, Competence, Departement, Epci


@dataclass(frozen=True)
class CommuneFilter:
    folded_query: str | None = None
    departement: str | None = None
    epci: str | None = None


class RankedCommune(NamedTuple):
    """A commune found by a search, with how well its name matched (0 best; 0 when no name
    was searched)."""

    commune: Commune
    rank: int


class EpciMember(NamedTuple):
    code: str
    name: str
    population: int


class DepartementFigures(NamedTuple):
    departement: Departement
    communes_count: int
    population: int


class TerritoryRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def commune(self, code: str) -> Commune | None:
        return (
            await self.session.scalars(select(Commune).where(col(Commune.code) == code))
        ).first()

    async def communes(
        self, where: CommuneFilter, after: Sequence[object] | None, limit: int
    ) -> list[RankedCommune]:
        """Keyset page ordered by (rank, -population, code). Without a query every rank is 0,
        so pages follow population then code."""
        search_name, population, code = (
            col(Commune.search_name),
            col(Commune.population),
            col(Commune.code),
        )
        rank: ColumnElement[int] = literal(0)
        conditions: list[ColumnElement[bool]] = []
        if where.folded_query:
            q = where.folded_query
            # every word must start a word of the name ('saint eti' matches, 'aint' does not);
            # folded words are [0-9a-z] only, safe inside a tsquery
            prefixes = " & ".join(f"{word}:*" for word in q.split())
            conditions.append(
                func.to_tsvector(literal_column("'simple'"), search_name).op("@@")(
                    func.to_tsquery(literal_column("'simple'"), prefixes)
                )
            )
            rank = case((search_name == q, 0), (search_name.startswith(q), 1), else_=2)
        if where.departement:
            conditions.append(col(Commune.departement_code) == where.departement)
        if where.epci:
            conditions.append(col(Commune.epci_siren) == where.epci)
        key = (rank, -population, code)
        stmt = select(Commune, rank.label("rank")).where(*conditions)
        if after is not None:
            stmt = stmt.where(tuple_(*key) > tuple_(*(literal(v) for v in after)))
        stmt = stmt.order_by(*key).limit(limit + 1)
        return [RankedCommune(c, r) for c, r in await self.session.execute(stmt)]

    async def epci(self, siren: str) -> tuple[Epci, list[EpciMember]] | None:
        """The EPCI and its member communes by code."""
        epci = (await self.session.scalars(select(Epci).where(col(Epci.siren) == siren))).first()
        if epci is None:
            return None
        members = await self.session.execute(
            select(col(Commune.code), col(Commune.name), col(Commune.population))
            .where(col(Commune.epci_siren) == siren)
            .order_by(col(Commune.code))
        )
        return epci, [EpciMember(*m) for m in members]

    async def departement(self, code: str) -> DepartementFigures | None:
        of_departement = col(Commune.departement_code) == col(Departement.code)
        stmt = select(
            Departement,
            select(func.count()).where(of_departement).scalar_subquery().label("communes_count"),
            select(func.coalesce(func.sum(col(Commune.population)), 0))
            .where(of_departement)
            .scalar_subquery()
            .label("population"),
        ).where(col(Departement.code) == code)
        found = (await self.session.execute(stmt)).first()
        if found is None:
            return None
        departement, communes_count, population = found
        # a sum of integers is a numeric in PostgreSQL
        return DepartementFigures(departement, int(communes_count), int(population))

    async def competences(self) -> list[Competence]:
        stmt = select(Competence).order_by(col(Competence.code))
        return list((await self.session.scalars(stmt)).all())


__all__ = ["CommuneFilter", "TerritoryRepository"]
