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


def check_shared_scan(queries: Sequence[Query]) -> None:
    """Tables read in one scan as grouping sets share their area; each has its own measure,
    period, sensitivity, filters and dimensions, and may count rows another counts too
    (every grouping set sees every row). Their medians, if any, are of the same steps, and
    a measure has at most 31 of them (``grouping()`` of their flags is a 32-bit mask)."""
    if any(q.area != queries[0].area for q in queries):
        raise ValueError("tables read in one scan share their area")
    if len({q.measure.delays for q in queries if q.measure.delays}) > 1:
        raise ValueError("tables read in one scan have medians of the same steps")
    per_measure: dict[str, int] = {}
    for query in queries:
        per_measure[query.measure.name] = per_measure.get(query.measure.name, 0) + 1
    if max(per_measure.values()) > 31:
        raise ValueError("at most 31 tables of a measure are read in one scan")


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
