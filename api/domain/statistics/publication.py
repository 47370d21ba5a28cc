"""Publishing a table: disclosure control applied to its cells (counts 1-4 and the cells
that would let one recompute them suppressed, amounts with them), rates per 1,000
inhabitants and median delays, shaped as the answer. Nothing leaves the service otherwise."""

from __future__ import annotations

from api.domain import clock
from api.domain.statistics import disclosure
from api.domain.statistics.cells import AggregateRow, Period, Query
from api.domain.statistics.disclosure import TOTAL, Protection
from api.domain.statistics.rules import Measure, per_1000
from api.domain.statistics.schemas import (
    MedianDays,
    StatisticsCell,
    StatisticsRead,
    StatisticsTotal,
    SuppressionSummary,
)


def published_total(count: int) -> int | None:
    return None if disclosure.is_primary(count) else count


def publish(query: Query, rows: list[AggregateRow], period: Period) -> StatisticsRead:
    """Apply disclosure control to the aggregate rows and shape the answer."""
    by = query.by
    cells = {r.key: r for r in rows if not r.is_total}
    total_row = next((r for r in rows if r.is_total), None)
    protection = _protection(by, cells, total_row.count if total_row else 0)
    published: list[StatisticsCell] = []
    for key, count in sorted(protection.counts.items()):
        if TOTAL in key or (count == 0 and not protection.suppressed(key)):
            continue
        row = cells.get(key)
        population = _population(query, key)
        published.append(
            _cell(query.measure, dict(zip(by, key, strict=True)), row, population, protection, key)
        )
    total_key = (TOTAL,) * len(by)
    total_hidden = protection.suppressed(total_key)
    total_count = total_row.count if total_row else 0
    return StatisticsRead(
        measure=query.measure.name,
        territory=str(query.area.ref),
        territory_name=query.area.name,
        population=sum(query.area.population.values()),
        from_=period.first,
        to=period.last,
        by=list(by),
        as_of=clock.now(),
        cells=published,
        total=StatisticsTotal(
            count=None if total_hidden else total_count,
            amount=None if total_hidden or not total_row else total_row.amount,
            per_1000=None
            if total_hidden
            else per_1000(total_count, sum(query.area.population.values())),
            median_days=_medians(query.measure, total_row, total_hidden),
            suppressed=total_hidden,
        ),
        suppression=SuppressionSummary(
            threshold=disclosure.THRESHOLD,
            primary=sum(1 for k in protection.primary if TOTAL not in k),
            secondary=sum(1 for k in protection.secondary if TOTAL not in k),
        ),
    )


def _protection(
    by: tuple[str, ...], cells: dict[tuple[str, ...], AggregateRow], count: int
) -> Protection:
    if not by:
        hidden = frozenset({()}) if disclosure.is_primary(count) else frozenset()
        return Protection({(): count}, hidden, frozenset())
    return disclosure.protect({k: r.count for k, r in cells.items()}, len(by))


def _population(query: Query, key: tuple[str, ...]) -> int:
    if "commune" in query.by:
        return query.area.population.get(key[query.by.index("commune")], 0)
    return sum(query.area.population.values())


def _cell(
    measure: Measure,
    dims: dict[str, str],
    row: AggregateRow | None,
    population: int,
    protection: Protection,
    key: tuple[str, ...],
) -> StatisticsCell:
    hidden = protection.suppressed(key)
    count = 0 if row is None else row.count
    figures: dict[str, object] = {"count": None if hidden else count, "suppressed": hidden}
    if measure.amounts:
        figures["amount"] = None if hidden or row is None else row.amount
    figures["per_1000"] = None if hidden else per_1000(count, population)
    if measure.delays:
        figures["median_days"] = _medians(measure, row, hidden)
    return StatisticsCell.model_validate({**dims, **figures})


def _medians(measure: Measure, row: AggregateRow | None, hidden: bool) -> MedianDays | None:
    if not measure.delays:
        return None
    if hidden or row is None:
        return MedianDays()
    return MedianDays.model_validate(row.medians)
