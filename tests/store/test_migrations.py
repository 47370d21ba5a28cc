"""Migrations build exactly the tables the code declares; reference set-up is idempotent."""

from __future__ import annotations

import asyncio
import importlib
import uuid

import asyncpg
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import URL

import api.db.tables  # noqa: F401
from api.db.base import metadata
from api.db.engine import owner_connection
from api.db.reference import load_reference_data

_FOUNDATION = importlib.import_module("api.db.migrations.versions.0001_foundation")

# expression indexes live in migrations only: the table declarations cannot express them
EXPRESSION_INDEXES = {"ix_commune_search_words"}


async def test_migrated_schema_matches_the_table_declarations(database_url: URL) -> None:
    async with owner_connection(database_url) as conn:
        diff = await conn.run_sync(
            lambda sync: compare_metadata(
                MigrationContext.configure(sync, opts={"compare_type": True}), metadata
            )
        )
    diff = [d for d in diff if not (d[0] == "remove_index" and d[1].name in EXPRESSION_INDEXES)]
    assert diff == []


async def test_reference_set_up_runs_twice_without_change(database_url: URL) -> None:
    async with owner_connection(database_url) as conn:
        before = await conn.scalar(text("SELECT count(*) FROM commune"))
        await load_reference_data(conn)
        await load_reference_data(conn)
        assert await conn.scalar(text("SELECT count(*) FROM commune")) == before == 34969
        assert await conn.scalar(text("SELECT count(*) FROM competence")) == 18


async def test_two_databases_creating_the_runtime_role_at_once_both_go_on(
    database_url: URL,
) -> None:
    """Roles belong to the server: two databases migrated for the first time at once (a test
    run's workers on a new server) both find the runtime role missing and both create it. The
    second waits for the first, then must take the role as there rather than fail."""
    role = f"guichet_race_{uuid.uuid4().hex[:12]}"
    create = _FOUNDATION.create_role(role)
    dsn = database_url.set(drivername="postgresql").render_as_string(hide_password=False)
    first, second = await asyncpg.connect(dsn), await asyncpg.connect(dsn)
    try:
        pending = first.transaction()
        await pending.start()
        await first.execute(create)  # created, not committed yet
        racing = asyncio.create_task(second.execute(create))
        waiting = "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $1"
        for _ in range(200):
            if await first.fetchval(waiting, second.get_server_pid()):
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("the second creation did not wait for the first")
        await pending.commit()
        await racing
        assert await second.fetchval("SELECT count(*) FROM pg_roles WHERE rolname = $1", role) == 1
    finally:
        await first.execute(f"DROP ROLE IF EXISTS {role}")
        await first.close()
        await second.close()
