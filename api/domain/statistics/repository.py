"""The aggregate queries of the steering statistics, scoped to the acting organisation's
territory. The runtime role reads statistical rows only through ``guichet_stat_rows``
(migration 0022), which answers statistics readers only, within that territory, without the
records' ids; a direct SELECT on ``stat_fact`` reads nothing."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Date,
    Integer,
    Numeric,
    TableValuedAlias,
    Text,
    and_,
    column,
    func,
    literal,
    literal_column,
    or_,
    select,
    true,
    tuple_,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from api.auth.scope import Scope
from api.domain.statistics.rules import Measure, TerritoryKind, TerritoryRef
from api.domain.statistics.tables import StatFact
from api.store.tables import Commune, Competence, Organisation, OrganisationCommune

_fact = StatFact.__table__  # type: ignore[attr-defined]
_commune = Commune.__table__  # type: ignore[attr-defined]
_competence = Competence.__table__  # type: ignore[attr-defined]
_organisation = Organisation.__table__  # type: ignore[attr-defined]
_territory = OrganisationCommune.__table__  # type: ignore[attr-defined]

# the columns guichet_stat_rows answers (stat_fact's, without the ids)
_ROW_COLUMNS = (
    ("measure", Text),
    ("month", Date),
    ("commune_code", Text),
    *((name, Text) for name in ("age_band", "sex", "household_type", "competence", "status")),
    *((name, Text) for name in ("reason", "outcome", "prestation", "decision")),
    ("amount", Numeric),
    *((f"{step}_days", Integer) for step in ("acknowledged", "accepted", "completed")),
)

# the dimension names of the API and their columns
_COLUMNS: dict[str, str] = {
    "commune": "commune_code",
    "month": "month",
    "age_band": "age_band",
    "sex": "sex",
    "household_type": "household_type",
    "competence": "competence",
    "status": "status",
    "reason": "reason",
    "outcome": "outcome",
    "prestation": "prestation",
    "decision": "decision",
}


def _rows(
    measure: str | None,
    communes: list[str] | None,
    first: date | None,
    last: date | None,
) -> TableValuedAlias:
    """The statistical rows the caller may read (``guichet_stat_rows``, migration 0022)."""
    return (
        func.guichet_stat_rows(
            literal(measure, Text),
            literal(communes, ARRAY(Text)),
            literal(first, Date),
            literal(last, Date),
        )
        .table_valued(*(column(name, type_) for name, type_ in _ROW_COLUMNS))
        .alias("f")
    )


@dataclass(frozen=True)
class Area:
    """A territory resolved to its communes and their populations."""

    ref: TerritoryRef
    name: str
    population: dict[str, int]  # commune code -> inhabitants

    @property
    def communes(self) -> list[str]:
        return sorted(self.population)


@dataclass(frozen=True)
class Query:
    measure: Measure
    area: Area
    first_month: date
    last_month: date
    by: tuple[str, ...]
    include_sensitive: bool
    # extra equality filters, e.g. {"status": ["expired"]}
    where: tuple[tuple[str, tuple[str, ...]], ...] = ()


@dataclass(frozen=True)
class AggregateRow:
    key: tuple[str, ...]  # the dimension values, in the order of ``by``
    is_total: bool
    count: int
    amount: float | None
    medians: dict[str, float | None]


class StatisticsRepository:
    def __init__(self, session: AsyncSession, scope: Scope) -> None:
        self.session = session
        self.scope = scope

    async def area(self, ref: TerritoryRef) -> Area | None:
        """The communes of a commune, an EPCI or a département (reference data, public)."""
        c = _commune.c
        column = {
            TerritoryKind.COMMUNE: c.code,
            TerritoryKind.EPCI: c.epci_siren,
            TerritoryKind.DEPARTEMENT: c.departement_code,
        }[ref.kind]
        rows = (
            await self.session.execute(
                select(c.code, c.name, c.population).where(column == ref.code)
            )
        ).all()
        if not rows:
            return None
        name = rows[0].name if ref.kind is TerritoryKind.COMMUNE else str(ref)
        return Area(ref, name, {r.code: r.population for r in rows})

    async def sensitive_competences(self) -> frozenset[str]:
        rows = await self.session.scalars(
            select(_competence.c.code).where(_competence.c.sensitive.is_(True))
        )
        return frozenset(rows)

    def _facts(self, query: Query) -> TableValuedAlias:
        # the scope's territory: a repository filter first, guichet_stat_rows behind it
        communes = [code for code in query.area.communes if code in self.scope.territory]
        return _rows(query.measure.name, communes, query.first_month, query.last_month)

    @staticmethod
    def _conditions(
        f: TableValuedAlias, query: Query, sensitive: frozenset[str]
    ) -> list[ColumnElement[bool]]:
        conditions: list[ColumnElement[bool]] = []
        if not query.include_sensitive and sensitive:
            sensitive_codes = sorted(sensitive)
            conditions.append(or_(f.c.competence.is_(None), f.c.competence.not_in(sensitive_codes)))
            conditions.append(or_(f.c.prestation.is_(None), f.c.prestation.not_in(sensitive_codes)))
        for dimension, values in query.where:
            conditions.append(f.c[_COLUMNS[dimension]].in_(list(values)))
        return conditions

    async def aggregate(self, query: Query, sensitive: frozenset[str]) -> list[AggregateRow]:
        """One scan: the cells of ``query.by`` and the overall total (GROUPING SETS)."""
        f = self._facts(query)
        dims = [f.c[_COLUMNS[d]] for d in query.by]
        measures: list[Any] = [func.count().label("count")]
        if query.measure.amounts:
            measures.append(func.sum(f.c.amount).label("amount"))
        for step in query.measure.delays:
            delay = f.c[f"{step}_days"]
            measures.append(func.percentile_cont(0.5).within_group(delay).label(step))
        grouping: list[Any] = [func.grouping(*dims).label("grouping")] if dims else []
        statement = (
            select(*[d.label(n) for d, n in zip(dims, query.by, strict=True)], *grouping, *measures)
            .select_from(f)
            .where(and_(true(), *self._conditions(f, query, sensitive)))
        )
        if dims:
            statement = statement.group_by(func.grouping_sets(tuple_(*dims), literal_column("()")))
        rows = (await self.session.execute(statement)).mappings().all()
        return [self._row(query, row) for row in rows]

    @staticmethod
    def _row(query: Query, row: Any) -> AggregateRow:
        is_total = not query.by or row["grouping"] != 0
        key = () if is_total else tuple(_text(row[d]) for d in query.by)
        amount = row["amount"] if query.measure.amounts else None
        return AggregateRow(
            key=key,
            is_total=is_total,
            count=int(row["count"]),
            amount=None if amount is None else float(amount),
            medians={s: _float(row[s]) for s in query.measure.delays},
        )

    async def area_count(self, measure: str, ref: TerritoryRef, first: date, last: date) -> int:
        """The whole EPCI's or département's total, for the comparison line of a report
        (a definer function: it reaches beyond the caller's territory, totals only)."""
        count = await self.session.scalar(
            select(func.guichet_stat_area_count(measure, str(ref.kind), ref.code, first, last))
        )
        return int(count or 0)

    async def area_count_visible(self, area: Area, measure: str, first: date, last: date) -> int:
        communes = [code for code in area.communes if code in self.scope.territory]
        count = await self.session.scalar(
            select(func.count()).select_from(_rows(measure, communes, first, last))
        )
        return int(count or 0)

    async def commune_names(self, codes: Sequence[str]) -> dict[str, str]:
        c = _commune.c
        rows = await self.session.execute(select(c.code, c.name).where(c.code.in_(list(codes))))
        return {row.code: row.name for row in rows}

    async def parents(self, ref: TerritoryRef) -> tuple[str | None, str]:
        """The EPCI and the département a commune belongs to."""
        c = _commune.c
        row = (
            await self.session.execute(
                select(c.epci_siren, c.departement_code).where(c.code == ref.code)
            )
        ).one()
        return row.epci_siren, row.departement_code

    async def uncovered(self, area: Area) -> list[tuple[str, str]]:
        """(competence, commune) pairs of the area where no organisation holds the
        competence by law — so nobody can hold it by delegation either (domain.md §4)."""
        k, c = _competence.c, _commune.c
        holder = (
            select(_territory.c.commune_code)
            .join(_organisation, _organisation.c.id == _territory.c.organisation_id)
            .where(
                _territory.c.commune_code == c.code,
                _organisation.c.kind == func.any(k.legal_holder_kinds),
            )
            .exists()
        )
        rows = await self.session.execute(
            select(k.code, c.code)
            .select_from(_competence.join(_commune, true()))  # every pair, on purpose
            .where(c.code.in_(area.communes), ~holder)
            .order_by(k.code, c.code)
        )
        return [(row[0], row[1]) for row in rows]

    async def month_range(self) -> tuple[date, date] | None:
        f = _rows(None, None, None, None)
        row = (await self.session.execute(select(func.min(f.c.month), func.max(f.c.month)))).one()
        return None if row[0] is None else (row[0], row[1])


def _text(value: object) -> str:
    if value is None:
        return "unknown"
    if isinstance(value, date):
        return value.strftime("%Y-%m")
    return str(value)


def _float(value: object) -> float | None:
    return None if value is None else round(float(value), 1)  # type: ignore[arg-type]


async def detach_statistics(
    conn: AsyncConnection, person_ids: Sequence[uuid.UUID], now: datetime
) -> None:
    """Retention: the statistical rows of people being anonymised lose their link to them;
    the figures stay (the purge's owner transaction)."""
    await conn.execute(
        update(_fact)
        .where(_fact.c.measure == "people", _fact.c.source_id.in_(list(person_ids)))
        .values(source_id=None, refreshed_at=now)
    )
