"""Where the ABS report's time goes, in process: the service's own code as the runtime role
(row-level security on, the scope built as a request builds it, rolled back), every
statement timed, then the document drawn as HTML and as PDF, each timed on its own.

    .venv/bin/python -m bench.statistics_profile --database-url postgresql://postgres@127.0.0.1:5432/DB

The database is one ``bench/statistics.py`` runs on (migrated, backfilled). Output: for each
report, the median of ``--runs`` runs after a warm one: gathering (SQL time and the
statements, slowest first) and rendering, then cProfile's top functions of one rendering.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import asyncpg

from bench.http import profile_claims

REPORTS = (
    ("report, département (HTML)", "departement:80", "html"),
    ("report, Amiens (PDF)", "commune:80021", "pdf"),
)
YEAR = 2026


@dataclass
class Run:
    gather_ms: float
    sql_ms: float
    statements: list[tuple[float, str]]
    render_ms: float


async def _identity(url: str) -> tuple[uuid.UUID, uuid.UUID]:
    conn = await asyncpg.connect(url)
    try:
        row = await conn.fetchrow(
            "SELECT u.id AS user_id, m.organisation_id FROM app_user u "
            "JOIN membership m ON m.user_id = u.id WHERE u.email = 'pilotage.cd80@somme.demo'"
        )
        assert row is not None, "no pilotage.cd80 user: run guichet demo first"
        return row["user_id"], row["organisation_id"]
    finally:
        await conn.close()


async def profile(url: str, runs: int, load: Callable[[], float], explain: bool) -> None:
    from sqlalchemy import event

    from api.auth.builder import build_scope
    from api.db.engine import Database
    from api.domain.statistics import render
    from api.domain.statistics.repository import StatisticsRepository
    from api.domain.statistics.service import Statistics
    from api.settings import Settings

    os.environ.pop("DATABASE_URL", None)
    settings = Settings(database_url=url)
    database = Database.connect(settings)
    user, organisation = await _identity(url)
    captured: list[tuple[float, str]] = []
    last_parameters: dict[str, Any] = {}
    plans: list[str] = []
    started: dict[int, float] = {}

    def before(conn: Any, *_args: Any) -> None:
        started[id(conn)] = time.perf_counter()

    def after(conn: Any, _cursor: Any, statement: str, parameters: Any, *_rest: Any) -> None:
        elapsed = time.perf_counter() - started.pop(id(conn), time.perf_counter())
        captured.append((elapsed * 1000, " ".join(statement.split())))
        last_parameters[captured[-1][1]] = parameters

    event.listen(database.app_engine.sync_engine, "before_cursor_execute", before)
    event.listen(database.app_engine.sync_engine, "after_cursor_execute", after)
    claims = profile_claims(settings, user, organisation)
    draw = {"html": render.html, "pdf": render.pdf}
    try:
        for label, territory, media in REPORTS:
            results: list[Run] = []
            document: Any = None
            for _ in range(runs + 1):  # the first warms the caches
                captured.clear()
                t0 = time.perf_counter()
                async with database.sessionmaker() as session:
                    transaction = await session.begin()
                    try:
                        scope = await build_scope(session, claims)
                        service = Statistics(scope, StatisticsRepository(session, scope))
                        document = await service.report(territory, YEAR)
                        if explain and not plans:
                            slowest = max(captured)[1]
                            connection = await session.connection()
                            result = await connection.exec_driver_sql(
                                f"EXPLAIN (ANALYZE, BUFFERS) {slowest}",
                                tuple(last_parameters[slowest]),
                            )
                            plans.extend(row[0] for row in result)
                    finally:
                        await transaction.rollback()
                gathered = time.perf_counter()
                draw[media](document)
                done = time.perf_counter()
                results.append(
                    Run(
                        (gathered - t0) * 1000,
                        sum(ms for ms, _ in captured),
                        list(captured),
                        (done - gathered) * 1000,
                    )
                )
            measured = results[1:]
            median = sorted(measured, key=lambda r: r.gather_ms + r.render_ms)[len(measured) // 2]
            print(f"\n== {label}  (load {load():.1f}, median of {runs})")
            print(
                f"gather {statistics.median(r.gather_ms for r in measured):8.0f} ms "
                f"(SQL {statistics.median(r.sql_ms for r in measured):.0f} ms in "
                f"{len(median.statements)} statements)   render {media} "
                f"{statistics.median(r.render_ms for r in measured):8.0f} ms"
            )
            for ms, sql in sorted(median.statements, reverse=True)[:12]:
                print(f"  {ms:8.1f}  {sql[:150]}")
            if plans:
                print("the slowest statement, explained:\n  " + "\n  ".join(plans))
                plans.clear()
            profiler = cProfile.Profile()
            profiler.enable()
            draw[media](document)
            profiler.disable()
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(25)
            print(out.getvalue()[-6000:])
    finally:
        await database.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--explain", action="store_true", help="EXPLAIN the slowest statement")
    args = parser.parse_args(argv)
    asyncio.run(profile(args.database_url, args.runs, lambda: os.getloadavg()[0], args.explain))
    return 0


if __name__ == "__main__":
    sys.exit(main())
