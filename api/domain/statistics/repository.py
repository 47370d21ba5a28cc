"""The aggregate queries of the steering statistics, scoped to the acting organisation's
territory. Row-level security repeats it on ``stat_fact`` (migration 0022): the runtime role
reads rows only as a statistics reader, only of its organisation's territory, and never the
columns saying which record a row counts."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Subquery,
    and_,
    case,
    func,
    literal,
    null,
    or_,
    select,
    true,
    tuple_,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from api.auth.scope import Scope
from api.db.base import core_table
from api.db.tables import (
    Commune,
    Competence,
    Departement,
    Epci,
    Organisation,
    OrganisationCommune,
)
from api.domain.statistics.cells import (
    AggregateRow,
    Area,
    Query,
    SharedScan,
    cells_of,
    check_one_scan,
    rolled_up,
    shared_scans,
)
from api.domain.statistics.rules import TerritoryKind, TerritoryRef
from api.domain.statistics.tables import StatFact

_fact = core_table(StatFact)
_commune = core_table(Commune)
_competence = core_table(Competence)
_organisation = core_table(Organisation)
_epci = core_table(Epci)
_departement = core_table(Departement)
_territory = core_table(OrganisationCommune)

# the columns the runtime role may read (stat_fact's, without the ids: migration 0022)
_ROW_COLUMNS = [c for c in _fact.c if c.name not in ("id", "source_id")]

# Planner settings of a statistics transaction (set_config local: this transaction only).
# - A plan for each statement's own values: the driver prepares statements, and from the
#   sixth run of one on a pooled connection PostgreSQL may keep a generic plan, blind to
#   the communes and months bound; for a département's year it read the rows by a plain
#   index scan in random heap order (unmet needs: ~1.5 s, then 4-7 s from the sixth run).
# - Memory for the histograms of delays: row-level security's filters are estimated
#   blindly, so the planner expects far fewer rows than a département's year and, with the
#   default 4 MB, sorted the grouping sets on disk (480,000 rows by month, competence and
#   status: ~4.7 s, ~3.3 s hashed in memory).
_PLANNER_SETTINGS = select(
    func.set_config("plan_cache_mode", "force_custom_plan", True),
    func.set_config("work_mem", "32MB", True),
)

# the dimension names of the API and their columns
_COLUMNS: dict[str, str] = {
    "commune": "commune_code",
    **{
        name: name
        for name in (
            "month",
            "age_band",
            "sex",
            "household_type",
            "competence",
            "status",
            "reason",
            "outcome",
            "prestation",
            "decision",
            "category",
            "form",
        )
    },
}


def _rows(
    measure: str | None,
    communes: list[str] | None,
    first: date | None,
    last: date | None,
) -> Subquery:
    """The statistical rows of a measure, communes and months; row-level security keeps them
    to a statistics reader's territory. A subquery the planner flattens: the rows are
    aggregated as they are scanned."""
    f = _fact.c
    conditions: list[ColumnElement[bool]] = []
    if measure is not None:
        conditions.append(f.measure == measure)
    if communes is not None:
        conditions.append(f.commune_code.in_(communes))
    if first is not None:
        conditions.append(f.month >= first)
    if last is not None:
        conditions.append(f.month <= last)
    return select(*_ROW_COLUMNS).where(true(), *conditions).subquery("f")


class StatisticsRepository:
    def __init__(self, session: AsyncSession, scope: Scope) -> None:
        self.session = session
        self.scope = scope
        self._planner_set = False

    async def _plan_for_statistics(self) -> None:
        """Once per transaction, before the first statement over stat_fact."""
        if not self._planner_set:
            await self.session.execute(_PLANNER_SETTINGS)
            self._planner_set = True

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
        return Area(ref, await self._name(ref, rows[0].name), {r.code: r.population for r in rows})

    async def _name(self, ref: TerritoryRef, commune_name: str) -> str:
        if ref.kind is TerritoryKind.COMMUNE:
            return commune_name
        table, key = (
            (_epci, _epci.c.siren)
            if ref.kind is TerritoryKind.EPCI
            else (_departement, _departement.c.code)
        )
        name = await self.session.scalar(select(table.c.name).where(key == ref.code))
        return str(name or ref)

    async def sensitive_competences(self) -> frozenset[str]:
        rows = await self.session.scalars(
            select(_competence.c.code).where(_competence.c.sensitive.is_(True))
        )
        return frozenset(rows)

    def _source(self, query: Query) -> Subquery:
        # the scope's territory: a repository filter first, guichet_stat_rows behind it
        communes = [code for code in query.area.communes if code in self.scope.territory]
        return _rows(query.measure.name, communes, query.first_month, query.last_month)

    @staticmethod
    def _conditions(
        rows: Subquery, query: Query, sensitive: frozenset[str]
    ) -> list[ColumnElement[bool]]:
        f = rows.c
        conditions: list[ColumnElement[bool]] = []
        if not query.include_sensitive and sensitive:
            sensitive_codes = sorted(sensitive)
            conditions.append(or_(f.competence.is_(None), f.competence.not_in(sensitive_codes)))
            conditions.append(or_(f.prestation.is_(None), f.prestation.not_in(sensitive_codes)))
        for dimension, values in query.where:
            conditions.append(f[_COLUMNS[dimension]].in_(list(values)))
        return conditions

    async def aggregate(self, query: Query, sensitive: frozenset[str]) -> list[AggregateRow]:
        """The cells of ``query.by`` and their total, in one scan that hashes, never sorts:
        with delays, one histogram of working days per cell and step (GROUPING SETS), the
        medians read from them; the total is the sum of the cells."""
        rows_ = self._source(query)
        f = rows_.c
        dims = [f[_COLUMNS[d]].label(d) for d in query.by]
        steps = query.measure.delays
        delays = [getattr(f, f"{step}_days").label(step) for step in steps]
        columns: list[Any] = [*dims, *delays, func.count().label("count")]
        if query.measure.amounts:
            columns.append(func.sum(f.amount).label("amount"))
        if delays:
            columns.append(func.grouping(*delays).label("step_mask"))
        statement = (
            select(*columns)
            .select_from(rows_)
            .where(and_(true(), *self._conditions(rows_, query, sensitive)))
        )
        if delays:
            statement = statement.group_by(
                func.grouping_sets(*(tuple_(*dims, delay) for delay in delays))
            )

        elif dims:
            statement = statement.group_by(*dims)
        await self._plan_for_statistics()
        rows = (await self.session.execute(statement)).mappings().all()
        return cells_of(query, rows)

    async def aggregate_disjoint(
        self, queries: Sequence[Query], sensitive: frozenset[str]
    ) -> list[list[AggregateRow]]:
        """The cells of several tables of one area and period, in one scan of their
        measures' rows (one round trip, each row read once): each row is labelled with the
        table whose filters it meets, then grouped by that label and the table's own
        dimensions. The tables count disjoint rows (another measure, or other statuses of
        the same one) and have no medians."""
        check_one_scan(queries)
        first = queries[0]
        communes = [code for code in first.area.communes if code in self.scope.territory]
        rows_ = _rows(None, communes, first.first_month, first.last_month)
        f = rows_.c
        matches = [
            and_(f.measure == q.measure.name, *self._conditions(rows_, q, sensitive))
            for q in queries
        ]
        labelled = (
            select(
                case(*((m, literal(i)) for i, m in enumerate(matches))).label("table"),
                *(f[column] for column in sorted({_COLUMNS[d] for q in queries for d in q.by})),
                f.amount,
            )
            .where(f.measure.in_(sorted({q.measure.name for q in queries})))
            .subquery("labelled")
        )
        t = labelled.c
        # the j-th key is the j-th dimension of the row's table (NULL past its last)
        keys = [
            case(
                *(
                    (t.table == i, t[_COLUMNS[q.by[j]]])
                    for i, q in enumerate(queries)
                    if j < len(q.by)
                ),
                else_=null(),
            ).label(f"key{j}")
            for j in range(max(len(q.by) for q in queries))
        ]
        statement = (
            select(t.table, *keys, func.count().label("count"), func.sum(t.amount).label("amount"))
            .where(t.table.is_not(None))
            .group_by(t.table, *keys)
        )
        found: list[list[dict[str, Any]]] = [[] for _ in queries]
        await self._plan_for_statistics()
        for row in (await self.session.execute(statement)).mappings():
            by = queries[row["table"]].by
            found[row["table"]].append(
                {
                    **{d: row[f"key{j}"] for j, d in enumerate(by)},
                    "count": row["count"],
                    "amount": row["amount"],
                }
            )
        return [cells_of(q, rows) for q, rows in zip(queries, found, strict=True)]

    async def aggregate_shared(
        self, queries: Sequence[Query], sensitive: frozenset[str]
    ) -> list[list[AggregateRow]]:
        """The cells of several tables of one area (a report's: this year beside the year
        before, a cross table beside its margins, the unmet needs), in one scan per
        measure, period and sensitivity (:func:`shared_scans`): each distinct breakdown is a
        grouping set of that scan. The cells are those :meth:`aggregate` gives each table
        alone."""
        found: list[list[AggregateRow]] = [[] for _ in queries]
        await self._plan_for_statistics()
        for scan in shared_scans(queries):
            tables = [queries[i] for i in scan.tables]
            for index, rows in zip(
                scan.tables, await self._grouping_sets(scan, tables, sensitive), strict=True
            ):
                found[index] = rows
        return found

    async def _grouping_sets(
        self, scan: SharedScan, queries: Sequence[Query], sensitive: frozenset[str]
    ) -> list[list[AggregateRow]]:
        first = queries[0]
        communes = [code for code in first.area.communes if code in self.scope.territory]
        months = [month for period in scan.periods for month in period]
        rows_ = _rows(first.measure.name, communes, min(months), max(months))
        f = rows_.c
        steps = next((q.measure.delays for q in queries if q.measure.delays), ())
        dimensions = sorted({d for s in (*scan.sets, *scan.delay_sets) for d in s})
        # the index of the row's period (NULL between two periods: no table counts it)
        period = case(
            *(
                (and_(f.month >= month_from, f.month <= month_to), literal(n))
                for n, (month_from, month_to) in enumerate(scan.periods)
            )
        ).label("period")
        keys = {"period": period, **{d: f[_COLUMNS[d]].label(d) for d in dimensions}}
        delays = {step: getattr(f, f"{step}_days").label(step) for step in steps}
        # one set per breakdown; a breakdown with medians grouped with every step's delay
        # at once (a few thousand groups for a département's year), each step's histogram
        # summed from them below: one hash table instead of one per step
        sets: list[tuple[str, ...]] = [
            ("period", *by) for by in (*scan.sets, *((*by, *steps) for by in scan.delay_sets))
        ]
        grouped = [*keys.values(), *delays.values()]
        names = [*keys, *delays]
        columns: list[Any] = [
            *grouped,
            func.count().label("count"),
            func.sum(f.amount).label("amount"),
            func.grouping(*grouped).label("set_mask"),
        ]
        column = {**keys, **delays}
        statement = (
            select(*columns)
            .select_from(rows_)
            .where(and_(true(), *self._conditions(rows_, replace(first, where=()), sensitive)))
            .group_by(func.grouping_sets(*(tuple_(*(column[c] for c in s)) for s in sets)))
        )
        # grouping() sets a bit for each column a row's set leaves out, first column highest
        set_of_mask = {
            sum(1 << (len(names) - 1 - j) for j, c in enumerate(names) if c not in s): n
            for n, s in enumerate(sets)
        }
        by_set: list[list[Any]] = [[] for _ in sets]
        for row in (await self.session.execute(statement)).mappings():
            by_set[set_of_mask[row["set_mask"]]].append(row)
        results = []
        for i, query in zip(scan.tables, queries, strict=True):
            own = scan.period_of[i]
            if not query.measure.delays:
                rows = [row for row in by_set[scan.set_of[i]] if row["period"] == own]
                results.append(cells_of(query, rolled_up(query, rows)))
                continue
            # each row as one per step, shaped as a step's grouping set (the other steps
            # grouped out) for cells_of: the first step's rows count each record once
            rows = []
            for row in by_set[sets.index(("period", *query.by, *steps))]:
                if row["period"] != own:
                    continue
                for j, step in enumerate(steps):
                    mask = (1 << len(steps)) - 1 - (1 << (len(steps) - 1 - j))
                    others = {other: None for other in steps if other != step}
                    rows.append({**row, **others, "step_mask": mask})
            results.append(cells_of(query, rows))
        return results

    async def area_count(self, measure: str, ref: TerritoryRef, first: date, last: date) -> int:
        """The whole EPCI's or département's total, for the comparison line of a report
        (a definer function: it reaches beyond the caller's territory, totals only)."""
        count = await self.session.scalar(
            select(func.guichet_stat_area_count(measure, str(ref.kind), ref.code, first, last))
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
        # the organisation kinds present on each commune, a few per commune: the pairs are
        # tested against them rather than against every organisation covering the commune
        present = (
            select(_territory.c.commune_code, _organisation.c.kind)
            .join(_organisation, _organisation.c.id == _territory.c.organisation_id)
            .where(_territory.c.commune_code.in_(area.communes))
            .distinct()
            .subquery("present")
        )
        holder = (
            select(present.c.commune_code)
            .where(
                present.c.commune_code == c.code,
                present.c.kind == func.any(k.legal_holder_kinds),
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
        f = _rows(None, None, None, None).c
        row = (await self.session.execute(select(func.min(f.month), func.max(f.month)))).one()
        return None if row[0] is None else (row[0], row[1])


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
