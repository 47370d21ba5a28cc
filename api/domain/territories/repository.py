"""Public reference reads: territories and the competence catalogue (no scope: no personal
or partner-private data)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Row, case, func, literal, literal_column, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from api.db.tables import Commune, Competence, Departement, Epci

_commune = Commune.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class CommuneFilter:
    folded_query: str | None = None
    departement: str | None = None
    epci: str | None = None


class TerritoryRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def commune(self, code: str) -> Row[tuple[Commune]] | None:
        result = await self.session.execute(select(_commune).where(_commune.c.code == code))
        return result.first()

    async def communes(
        self, where: CommuneFilter, after: Sequence[object] | None, limit: int
    ) -> list[Row[tuple[object, ...]]]:
        """Keyset page ordered by (rank, -population, code). Without a query every rank is 0,
        so pages follow population then code."""
        c = _commune.c
        rank: ColumnElement[int] = literal(0)
        conditions = []
        if where.folded_query:
            q = where.folded_query
            # every word must start a word of the name ('saint eti' matches, 'aint' does not);
            # folded words are [0-9a-z] only, safe inside a tsquery
            prefixes = " & ".join(f"{word}:*" for word in q.split())
            conditions.append(
                func.to_tsvector(literal_column("'simple'"), c.search_name).op("@@")(
                    func.to_tsquery(literal_column("'simple'"), prefixes)
                )
            )
            rank = case((c.search_name == q, 0), (c.search_name.startswith(q), 1), else_=2)
        if where.departement:
            conditions.append(c.departement_code == where.departement)
        if where.epci:
            conditions.append(c.epci_siren == where.epci)
        key = (rank, -c.population, c.code)
        stmt = select(_commune, rank.label("rank")).where(*conditions)
        if after is not None:
            stmt = stmt.where(tuple_(*key) > tuple_(*(literal(v) for v in after)))
        stmt = stmt.order_by(*key).limit(limit + 1)
        return list((await self.session.execute(stmt)).all())

    async def epci(
        self, siren: str
    ) -> tuple[Row[tuple[Epci]], list[Row[tuple[object, ...]]]] | None:
        epci = Epci.__table__  # type: ignore[attr-defined]
        row = (await self.session.execute(select(epci).where(epci.c.siren == siren))).first()
        if row is None:
            return None
        members = await self.session.execute(
            select(_commune.c.code, _commune.c.name, _commune.c.population)
            .where(_commune.c.epci_siren == siren)
            .order_by(_commune.c.code)
        )
        return row, list(members.all())

    async def departement(self, code: str) -> Row[tuple[object, ...]] | None:
        dep = Departement.__table__  # type: ignore[attr-defined]
        of_dep = _commune.c.departement_code == dep.c.code
        stmt = select(
            dep,
            select(func.count()).where(of_dep).scalar_subquery().label("communes_count"),
            select(func.coalesce(func.sum(_commune.c.population), 0))
            .where(of_dep)
            .scalar_subquery()
            .label("population"),
        ).where(dep.c.code == code)
        return (await self.session.execute(stmt)).first()

    async def competences(self) -> list[Row[tuple[Competence]]]:
        comp = Competence.__table__  # type: ignore[attr-defined]
        return list((await self.session.execute(select(comp).order_by(comp.c.code))).all())


__all__ = ["CommuneFilter", "TerritoryRepository"]
