"""The role that runs requests owns nothing, cannot become the owner and meets RLS."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from api.db.engine import owner_connection
from api.settings import Settings


async def test_runtime_role_cannot_switch_to_the_owner(
    connection: AsyncConnection, database_url: URL
) -> None:
    with pytest.raises(DBAPIError, match="permission denied"):
        async with connection.begin_nested():
            await connection.execute(text(f'SET ROLE "{database_url.username}"'))


async def test_runtime_role_has_no_power(connection: AsyncConnection, settings: Settings) -> None:
    row = (
        await connection.execute(
            text(
                "SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb, rolinherit "
                "FROM pg_roles WHERE rolname = current_user"
            )
        )
    ).one()
    assert tuple(row) == (False, False, False, False, False)
    assert await connection.scalar(text("SELECT current_user")) == settings.app_role


async def test_runtime_role_owns_nothing(connection: AsyncConnection) -> None:
    owned = await connection.scalar(
        text(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relowner = (SELECT oid FROM pg_roles WHERE rolname = current_user) "
            "AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
        )
    )
    assert owned == 0


async def test_runtime_role_cannot_create_tables(connection: AsyncConnection) -> None:
    with pytest.raises(DBAPIError, match="permission denied"):
        async with connection.begin_nested():
            await connection.execute(text("CREATE TABLE intruder (id int)"))


async def test_forced_rls_hides_rows_without_a_policy(
    app_engine: AsyncEngine, database_url: URL, settings: Settings
) -> None:
    role = settings.app_role

    async def visible() -> list[int]:
        # a short transaction per read, so the owner's DDL below never waits on it
        async with app_engine.connect() as conn:
            return list((await conn.execute(text("SELECT v FROM rls_probe ORDER BY v"))).scalars())

    async with owner_connection(database_url) as owner:
        await owner.execute(text("CREATE TABLE rls_probe (v int)"))
        await owner.execute(text("INSERT INTO rls_probe VALUES (1), (2)"))
        await owner.execute(text("ALTER TABLE rls_probe ENABLE ROW LEVEL SECURITY"))
        await owner.execute(text("ALTER TABLE rls_probe FORCE ROW LEVEL SECURITY"))
        await owner.execute(text(f"GRANT SELECT ON rls_probe TO {role}"))
    try:
        assert await visible() == []
        async with owner_connection(database_url) as owner:
            await owner.execute(
                text(f"CREATE POLICY only_one ON rls_probe FOR SELECT TO {role} USING (v = 1)")
            )
        assert await visible() == [1]
    finally:
        async with owner_connection(database_url) as owner:
            await owner.execute(text("DROP TABLE rls_probe"))


async def test_requests_run_without_jit(connection: AsyncConnection) -> None:
    # JIT compiles again at every execution: the access rule's deliberate function costs put
    # a sync batch past jit_above_cost, which then spent most of its time compiling
    assert await connection.scalar(text("SHOW jit")) == "off"
