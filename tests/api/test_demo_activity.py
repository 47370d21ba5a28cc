"""`guichet demo`'s year of activity: fast, idempotent, and enough for the ABS to show."""

from __future__ import annotations

import time

from sqlalchemy import text
from sqlalchemy.engine import URL

from api.db.engine import create_engine
from api.demo.activity import PEOPLE, load_demo_activity
from tests.world import World


async def test_a_year_of_activity_loads_fast_and_once(database_url: URL, world: World) -> None:
    engine = create_engine(database_url, pool_size=1, max_overflow=0)
    try:
        async with engine.connect() as conn:
            transaction = await conn.begin()
            try:
                started = time.monotonic()
                assert await load_demo_activity(conn, world.organisations) == PEOPLE
                seconds = time.monotonic() - started
                counts = dict(
                    (
                        await conn.execute(
                            text("SELECT measure, count(*) FROM stat_fact GROUP BY measure")
                        )
                    ).all()
                )
                await load_demo_activity(conn, world.organisations)  # again: nothing new
                again = dict(
                    (
                        await conn.execute(
                            text("SELECT measure, count(*) FROM stat_fact GROUP BY measure")
                        )
                    ).all()
                )
            finally:
                await transaction.rollback()
    finally:
        await engine.dispose()
    assert seconds < 15, seconds  # a few seconds on an idle machine
    assert counts["people"] >= PEOPLE
    assert counts["referrals"] > PEOPLE // 2
    assert counts["orientations"] > 100 and counts["dossiers"] > 100
    assert again == counts
