"""What a statistics query asks and the cells it returns, pure: the repository runs the
query, these turn its rows into cells (counts, amounts, median delays from histograms) and
check that tables read in one scan never count a row twice."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from api.domain.statistics.rules import Measure, TerritoryRef, median_of_histogram


@dataclass(frozen=True)
class Period:
    first: date
    last: date


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


def check_one_scan(queries: Sequence[Query]) -> None:
    """Tables read in one scan share their area, period and sensitivity, have no medians,
    and never count the same row twice: two tables of one measure name distinct statuses."""
    first = queries[0]
    shared = (first.area, first.first_month, first.last_month, first.include_sensitive)
    statuses: dict[str, list[frozenset[str] | None]] = {}
    for query in queries:
        if (query.area, query.first_month, query.last_month, query.include_sensitive) != shared:
            raise ValueError("tables read in one scan share their area and period")
        if query.measure.delays:
            raise ValueError("tables read in one scan have no medians")
        named = dict(query.where).get("status")
        statuses.setdefault(query.measure.name, []).append(
            None if named is None else frozenset(named)
        )
    for measure, filters in statuses.items():
        if len(filters) < 2:
            continue
        named_filters = [f for f in filters if f is not None]
        if len(named_filters) < len(filters) or sum(map(len, named_filters)) != len(
            frozenset().union(*named_filters)
        ):
            raise ValueError(f"two tables of {measure} may count the same rows")


@dataclass(frozen=True)
class SharedScan:
    """One statement over the rows of one measure and sensitivity, for several tables of
    disjoint periods (this year and the year before): the period is a key of every grouping
    set; one set per distinct breakdown, each table rolled up from the set that covers its
    dimensions and filters (a table by competence from the one by competence and status),
    and with delays, one set of its dimensions and every step's delay."""

    tables: tuple[int, ...]  # indexes of the queries read in this scan
    periods: tuple[tuple[date, date], ...]  # first and last months, disjoint
    period_of: dict[int, int]  # a table -> the index of its period
    sets: tuple[tuple[str, ...], ...]  # dimensions of the grouping sets (no step)
    delay_sets: tuple[tuple[str, ...], ...]  # dimensions grouped with the steps' delays
    set_of: dict[int, int]  # a table without delays -> the index of the set it rolls up


def shared_scans(queries: Sequence[Query]) -> list[SharedScan]:
    """How to read tables of one area together: a scan per measure and sensitivity whose
    tables' periods are equal or disjoint (a report's tables: a handful of scans), each row
    read once, the fewest grouping sets in each."""
    if any(q.area != queries[0].area for q in queries):
        raise ValueError("tables read together share their area")
    buckets: list[tuple[tuple[str, bool], list[tuple[date, date]], list[int]]] = []
    for index, q in enumerate(queries):
        key, period = (q.measure.name, q.include_sensitive), (q.first_month, q.last_month)
        for bucket_key, periods, indexes in buckets:
            if bucket_key == key and all(
                p == period or p[1] < period[0] or period[1] < p[0] for p in periods
            ):
                if period not in periods:
                    periods.append(period)
                indexes.append(index)
                break
        else:
            buckets.append((key, [period], [index]))
    return [_scan(queries, periods, indexes) for _, periods, indexes in buckets]


def _scan(
    queries: Sequence[Query], periods: list[tuple[date, date]], indexes: list[int]
) -> SharedScan:
    sets: list[tuple[str, ...]] = []
    set_of: dict[int, int] = {}
    delay_sets: list[tuple[str, ...]] = []

    def needed(i: int) -> frozenset[str]:
        return frozenset(queries[i].by) | {d for d, _ in queries[i].where}

    plain = [i for i in indexes if not queries[i].measure.delays]
    for i in sorted(plain, key=lambda i: -len(needed(i))):  # widest first: they cover
        covering = next((n for n, s in enumerate(sets) if needed(i) <= set(s)), None)
        if covering is None:
            sets.append(tuple(sorted(needed(i))))
            covering = len(sets) - 1
        set_of[i] = covering
    for i in indexes:
        if queries[i].measure.delays:
            if queries[i].where:
                raise ValueError("a table with medians has no filters")
            if queries[i].by not in delay_sets:
                delay_sets.append(queries[i].by)
    period_of = {i: periods.index((queries[i].first_month, queries[i].last_month)) for i in indexes}
    return SharedScan(
        tuple(indexes), tuple(periods), period_of, tuple(sets), tuple(delay_sets), set_of
    )


def rolled_up(query: Query, rows: Sequence[Any]) -> list[dict[str, Any]]:
    """A table's aggregate rows from those of a grouping set that covers it: the rows its
    filters keep, summed by its own dimensions."""
    counts: dict[tuple[Any, ...], int] = {}
    amounts: dict[tuple[Any, ...], float | None] = {}
    for row in rows:
        if any(row[d] not in values for d, values in query.where):
            continue
        key = tuple(row[d] for d in query.by)
        counts[key] = counts.get(key, 0) + int(row["count"])
        if row["amount"] is not None:
            amounts[key] = (amounts.get(key) or 0) + row["amount"]
        else:
            amounts.setdefault(key, None)
    return [
        {**dict(zip(query.by, key, strict=True)), "count": count, "amount": amounts[key]}
        for key, count in counts.items()
    ]


def cells_of(query: Query, rows: Sequence[Any]) -> list[AggregateRow]:
    """The cells of a table from its aggregate rows (a mapping per row: the dimensions,
    ``count``, ``amount``, a delay histogram step per grouping set), and its total."""
    steps = query.measure.delays
    # grouping() sets a bit for each delay column left out of a row's set, first column highest
    masks = {
        sum(1 << (len(steps) - 1 - j) for j in range(len(steps)) if j != i): step
        for i, step in enumerate(steps)
    }
    counts: dict[tuple[str, ...], int] = {}
    amounts: dict[tuple[str, ...], float] = {}
    histograms: dict[tuple[str, ...], dict[str, dict[int, int]]] = {}
    for row in rows:
        key = tuple(_text(row[d]) for d in query.by)
        step = masks[row["step_mask"]] if steps else None
        if step is None or step == steps[0]:  # every record is in each step's sets once
            counts[key] = counts.get(key, 0) + int(row["count"])
            if query.measure.amounts and row["amount"] is not None:
                amounts[key] = amounts.get(key, 0.0) + float(row["amount"])
        if step is not None and row[step] is not None:
            histogram = histograms.setdefault(key, {}).setdefault(step, {})
            histogram[int(row[step])] = histogram.get(int(row[step]), 0) + int(row["count"])
    cells = [
        AggregateRow(
            key,
            False,
            count,
            amounts.get(key) if query.measure.amounts else None,
            {s: median_of_histogram(histograms.get(key, {}).get(s, {})) for s in steps},
        )
        for key, count in counts.items()
    ]
    total_histograms: dict[str, dict[int, int]] = {s: {} for s in steps}
    for per_step in histograms.values():
        for step, histogram in per_step.items():
            for days, n in histogram.items():
                total_histograms[step][days] = total_histograms[step].get(days, 0) + n
    total = AggregateRow(
        (),
        True,
        sum(counts.values()),
        sum(amounts.values()) if query.measure.amounts and amounts else None,
        {s: median_of_histogram(total_histograms[s]) for s in steps},
    )
    return [*(c for c in cells if query.by), total]


def _text(value: object) -> str:
    if value is None:
        return "unknown"
    if isinstance(value, date):
        return value.strftime("%Y-%m")
    return str(value)
