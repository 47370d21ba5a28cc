"""Migrations build exactly the tables the code declares; reference set-up is idempotent."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import URL

import api.db.tables  # noqa: F401
from api.db.base import metadata
from api.db.engine import owner_connection
from api.db.reference import load_reference_data

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
