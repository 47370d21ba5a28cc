"""What row-level security costs the statistics: the same ``GROUP BY`` over ``stat_fact``, as
the owner (no policy) and as the runtime role acting for the département's ``pilotage`` user
(the read policy of migration 0022: a statistics reader, its territory), in the same run.

    .venv/bin/python -m bench.stat_rows [--rows 200000] [--repeat 9]

A fresh database on the server ``DATABASE_URL`` names (or an embedded one), migrated, with
the demo territory and ``--rows`` synthetic statistical rows spread over the 771 communes of
the Somme; dropped at the end. Prints the medians, their ratio and the data size.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from sqlalchemy import text

from api.db.context import DbContext, set_db_context
from api.db.engine import Database, owner_connection
from api.db.migrate import migrate
from tests.database import create_database, drop_database, server_url, test_settings
from tests.world import load_world

QUERY = text(
    "SELECT age_band, count(*) FROM stat_fact WHERE measure = 'people' "
    "AND month BETWEEN date '2026-01-01' AND date '2026-12-01' GROUP BY age_band"
)

FILL = text(
    """
    INSERT INTO stat_fact (measure, source_id, month, commune_code, age_band, sex, refreshed_at)
    SELECT 'people', gen_random_uuid(), date '2026-01-01' + (i % 11) * interval '1 month',
           c.code, (ARRAY['0-17','18-24','25-39','40-54','55-64','65-74','75+'])[1 + i % 7],
           CASE WHEN i % 2 = 0 THEN 'F' ELSE 'M' END, now()
    FROM generate_series(1, :rows) i
    JOIN LATERAL (SELECT code FROM commune WHERE departement_code = '80'
                  ORDER BY code OFFSET (i % 771) LIMIT 1) c ON true
    """
)


async def run(rows: int, repeat: int) -> None:
    server = server_url()
    url = await create_database(server)
    settings = test_settings(url)
    try:
        await migrate(settings, url)
        world = await load_world(settings, url)
        async with owner_connection(url) as conn:
            await conn.execute(FILL, {"rows": rows})
            await conn.execute(text("ANALYZE stat_fact"))
        database = Database.connect(settings)
        owner, runtime = [], []
        seen = 0
        for _ in range(repeat):  # interleaved: the machine's load hits both alike
            async with owner_connection(url) as conn:
                started = time.perf_counter()
                await conn.execute(QUERY)
                owner.append(time.perf_counter() - started)
            async with database.sessionmaker() as session:
                await set_db_context(
                    session,
                    context=DbContext.REQUEST,
                    organisation_id=world.organisations["departement"],
                    principal_id=world.personas["pilotage"].principal_id,
                )
                started = time.perf_counter()
                seen = sum(n for _, n in (await session.execute(QUERY)).all())
                runtime.append(time.perf_counter() - started)
                await session.rollback()
        await database.dispose()
        o, r = statistics.median(owner), statistics.median(runtime)
        print(f"stat_fact rows: {rows:,} (the pilotage user may read {seen:,})")
        print(f"owner, no policy:          {o * 1000:8.1f} ms")
        print(f"runtime role, read policy: {r * 1000:8.1f} ms   ratio {r / o:.2f}")
    finally:
        await drop_database(server, str(url.database))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    asyncio.run(run(args.rows, args.repeat))


if __name__ == "__main__":
    main()
