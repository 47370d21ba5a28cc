"""A table rolled up from a grouping set that covers it: the rows its filters keep, summed by
its own dimensions, amounts summed where known; then cells_of as for a table read alone."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from api.domain.statistics.cells import Area, Query, cells_of, rolled_up
from api.domain.statistics.rules import MEASURES, TerritoryKind, TerritoryRef

AREA = Area(TerritoryRef(TerritoryKind.COMMUNE, "80021"), "Amiens", {"80021": 133_000})


def _query(measure: str, by: tuple[str, ...], where: dict[str, tuple[str, ...]]) -> Query:
    return Query(
        MEASURES[measure],
        AREA,
        date(2026, 1, 1),
        date(2026, 12, 1),
        by,
        include_sensitive=False,
        where=tuple(where.items()),
    )


def test_the_rows_a_table_keeps_summed_by_its_dimensions() -> None:
    rows = [  # a set by (competence, reason, status)
        {"competence": "fsl", "reason": "hors_competence", "status": "declined", "count": 7},
        {"competence": "fsl", "reason": "pas_de_capacite", "status": "declined", "count": 5},
        {"competence": "fsl", "reason": "autre", "status": "declined", "count": 11},
        {"competence": "fsl", "reason": None, "status": "expired", "count": 13},
        {"competence": "rsa", "reason": None, "status": "expired", "count": 6},
        {"competence": "rsa", "reason": None, "status": "completed", "count": 40},
    ]
    rows = [{**row, "amount": None} for row in rows]
    declined = _query(
        "referrals",
        ("competence",),
        {"status": ("declined",), "reason": ("hors_competence", "pas_de_capacite")},
    )
    assert rolled_up(declined, rows) == [{"competence": "fsl", "count": 12, "amount": None}]
    expired = _query("referrals", ("competence",), {"status": ("expired",)})
    assert rolled_up(expired, rows) == [
        {"competence": "fsl", "count": 13, "amount": None},
        {"competence": "rsa", "count": 6, "amount": None},
    ]
    every = _query("referrals", (), {})
    assert rolled_up(every, rows) == [{"count": 82, "amount": None}]
    # a NULL reason is no reason named in a filter
    named = _query("referrals", ("status",), {"reason": ("autre",)})
    assert rolled_up(named, rows) == [{"status": "declined", "count": 11, "amount": None}]


def test_amounts_are_summed_where_known() -> None:
    rows = [
        {"commune": "80021", "status": "granted", "count": 3, "amount": Decimal("120.50")},
        {"commune": "80021", "status": "paid", "count": 2, "amount": Decimal("80.00")},
        {"commune": "80021", "status": "refused", "count": 4, "amount": None},
    ]
    by_commune = _query("aids", ("commune",), {})
    assert rolled_up(by_commune, rows) == [
        {"commune": "80021", "count": 9, "amount": Decimal("200.50")}
    ]
    cells = cells_of(by_commune, rolled_up(by_commune, rows))
    assert [(c.key, c.count, c.amount) for c in cells] == [
        (("80021",), 9, 200.5),
        ((), 9, 200.5),
    ]
    refused = _query("aids", ("commune",), {"status": ("refused",)})
    assert rolled_up(refused, rows) == [{"commune": "80021", "count": 4, "amount": None}]
