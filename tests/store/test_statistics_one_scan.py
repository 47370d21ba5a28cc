"""Tables read together give the cells of separate aggregates, over the département
(sensitive competences counted) and over a commune (left out), on a year of the demo's
activity: the unmet needs' four tables in one scan of the statistical rows, and every table
of the yearly report (both years, unmet needs included) as grouping sets, one scan per
measure."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth.builder import build_scope
from api.auth.tokens import AccessClaims
from api.db.engine import create_engine
from api.demo.activity import load_demo_activity
from api.domain.statistics.cells import (
    AggregateRow,
    Area,
    Period,
    Query,
    check_one_scan,
    shared_scans,
)
from api.domain.statistics.repository import StatisticsRepository
from api.domain.statistics.rules import TerritoryKind, TerritoryRef
from api.domain.statistics.service import report_tables, unmet_tables
from tests.world import World


def _by_key(rows: list[AggregateRow]) -> dict[tuple[bool, tuple[str, ...]], AggregateRow]:
    return {(row.is_total, row.key): row for row in rows}


async def test_one_scan_gives_the_cells_of_separate_aggregates(
    database_url: URL, world: World
) -> None:
    engine = create_engine(database_url, pool_size=1, max_overflow=0)
    try:
        async with engine.connect() as conn:
            transaction = await conn.begin()
            try:
                await load_demo_activity(conn, world.organisations)
                session = AsyncSession(bind=conn)
                pilotage = world.personas["pilotage"]
                assert pilotage.principal_id is not None
                claims = AccessClaims(
                    sub=str(pilotage.principal_id),
                    kind="user",
                    org=world.organisations["departement"],
                    roles=(),
                    scopes=(),
                    jti="test",
                    iat=0,
                    nbf=0,
                    exp=0,
                    iss="test",
                    aud="test",
                )
                repository = StatisticsRepository(session, await build_scope(session, claims))
                sensitive = await repository.sensitive_competences()
                today = date.today()
                period = Period(date(today.year - 2, 1, 1), today)
                report_year = today.year
                for ref in (
                    TerritoryRef(TerritoryKind.DEPARTEMENT, "80"),
                    TerritoryRef(TerritoryKind.COMMUNE, "80021"),
                ):
                    area = await repository.area(ref)
                    assert area is not None
                    queries = unmet_tables(area, period)
                    together = await repository.aggregate_disjoint(queries, sensitive)
                    apart = [await repository.aggregate(q, sensitive) for q in queries]
                    assert [_by_key(t) for t in together] == [_by_key(a) for a in apart], ref
                    if ref.kind is TerritoryKind.DEPARTEMENT:
                        # the demo's year declines, lets expire and refuses: the test can fail
                        assert all(len(a) > 1 for a in apart[:3]), apart
                    report = [
                        *(q for q, _ in report_tables(area, report_year).values()),
                        *unmet_tables(area, Period(date(report_year - 1, 1, 1), today)),
                        *unmet_tables(area, Period(date(report_year, 1, 1), today)),
                    ]
                    shared = await repository.aggregate_shared(report, sensitive)
                    alone = [await repository.aggregate(q, sensitive) for q in report]
                    assert [_by_key(t) for t in shared] == [_by_key(a) for a in alone], ref
                    # rows of both years, medians, tables counting the same rows
                    assert sum(len(a) for a in alone) > 3 * len(alone), alone
                    assert any(r.medians.get("accepted") for a in alone for r in a), alone
            finally:
                await transaction.rollback()
    finally:
        await engine.dispose()


def test_tables_that_may_count_the_same_rows_are_not_read_in_one_scan() -> None:
    area = Area(TerritoryRef(TerritoryKind.COMMUNE, "80021"), "Amiens", {"80021": 133_000})
    declined, expired, refused, aids = unmet_tables(
        area, Period(date(2026, 1, 1), date(2026, 12, 31))
    )
    check_one_scan([declined, expired, refused, aids])
    overlapping: list[list[Query]] = [
        [declined, declined],
        [expired, replace(expired, where=())],  # every status, expired included
    ]
    for queries in overlapping:
        with pytest.raises(ValueError, match="same rows"):
            check_one_scan(queries)
    elsewhere = replace(
        refused,
        area=Area(TerritoryRef(TerritoryKind.COMMUNE, "80001"), "Abbeville", {"80001": 23_000}),
    )
    with pytest.raises(ValueError, match="area and period"):
        check_one_scan([declined, elsewhere])


def test_a_report_reads_a_scan_per_measure_year_and_sensitivity_with_few_sets() -> None:
    area = Area(TerritoryRef(TerritoryKind.COMMUNE, "80021"), "Amiens", {"80021": 133_000})
    year = Period(date(2026, 1, 1), date(2026, 12, 31))
    tables = [
        *(q for q, _ in report_tables(area, 2026).values()),
        *unmet_tables(area, Period(date(2025, 1, 1), date(2025, 12, 31))),
        *unmet_tables(area, year),
    ]
    scans = shared_scans(tables)
    # a scan per measure, both years in it, the territory's own counts for the comparison
    # included: below the département no table, those counts neither, has a sensitive row
    assert len(scans) == len({q.measure.name for q in tables})
    assert not any(q.include_sensitive for q in tables)
    assert all(len(s.periods) == 2 for s in scans if len(s.tables) > 2)
    referrals = next(s for s in scans if tables[s.tables[0]].measure.name == "referrals")
    # by competence and status, declined by competence and reason, expired by competence,
    # either year: the widest set covers them all; the medians' table has its own set
    assert referrals.sets == (("competence", "reason", "status"),)
    assert referrals.delay_sets == (("competence",),)
    assert sorted({i for s in scans for i in s.tables}) == list(range(len(tables)))
    # a period overlapping another is read in a scan of its own
    whole = replace(tables[1], first_month=date(2025, 1, 1))  # people, both years
    assert len(shared_scans([*tables, whole])) == len(scans) + 1
    elsewhere = replace(
        tables[0],
        area=Area(TerritoryRef(TerritoryKind.COMMUNE, "80001"), "Abbeville", {"80001": 23_000}),
    )
    with pytest.raises(ValueError, match="area"):
        shared_scans([tables[0], elsewhere])
