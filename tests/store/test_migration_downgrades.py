"""Migrations taken down and up again leave the schema exactly as they found it.

The early migrations are forward-only (their ``downgrade`` refuses: recreate the database or
restore a backup). Every one after :data:`LAST_FORWARD_ONLY` must have a downgrade that
works: this test takes a fresh database up one revision at a time from there, recording the
whole schema at each (tables, columns, constraints, indexes, policies, row-level security
flags, functions with their comments, triggers and grants), then down one at a time, each
downgrade having to give back exactly the schema recorded below it. A downgrade that forgets
an object, or leaves a stale definition behind, fails it, even when the next upgrade would
have covered it up.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection

from api.db.engine import owner_connection
from api.db.migrate import alembic_config, head_revision
from tests.database import create_database, drop_database, server_url
from tests.database import test_settings as settings_for

#: the newest revision whose downgrade refuses; every later one must round-trip
LAST_FORWARD_ONLY = "0023"

# one query per kind of schema object, each row a stable text: sorted, they are the snapshot
_SNAPSHOT_QUERIES = {
    "columns": """
        SELECT format('%s.%s %s null=%s default=%s', c.table_name, c.column_name,
                      c.data_type, c.is_nullable, coalesce(c.column_default, ''))
        FROM information_schema.columns c WHERE c.table_schema = 'public'""",
    "constraints": """
        SELECT format('%s %s %s', t.relname, k.conname, pg_get_constraintdef(k.oid))
        FROM pg_constraint k JOIN pg_class t ON t.oid = k.conrelid
        JOIN pg_namespace n ON n.oid = t.relnamespace WHERE n.nspname = 'public'""",
    "indexes": "SELECT indexdef FROM pg_indexes WHERE schemaname = 'public'",
    "policies": """
        SELECT format('%s %s %s %s %s %s', tablename, policyname, permissive, roles, cmd,
                      coalesce(qual, '') || ' / ' || coalesce(with_check, ''))
        FROM pg_policies WHERE schemaname = 'public'""",
    "row_security": """
        SELECT format('%s rls=%s force=%s', c.relname, c.relrowsecurity, c.relforcerowsecurity)
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm')""",
    "functions": """
        SELECT pg_get_functiondef(p.oid) || ' -- '
               || coalesce(obj_description(p.oid, 'pg_proc'), '')
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = 'public' AND p.prokind IN ('f', 'p')""",
    "triggers": """
        SELECT pg_get_triggerdef(g.oid) FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND NOT g.tgisinternal""",
    "table_grants": """
        SELECT format('%s %s %s', grantee, table_name, privilege_type)
        FROM information_schema.role_table_grants WHERE table_schema = 'public'""",
    "column_grants": """
        SELECT format('%s %s.%s %s', grantee, table_name, column_name, privilege_type)
        FROM information_schema.column_privileges WHERE table_schema = 'public'""",
    "function_grants": """
        SELECT format('%s %s %s', grantee, routine_name, privilege_type)
        FROM information_schema.routine_privileges WHERE routine_schema = 'public'""",
}


async def _snapshot(conn: AsyncConnection) -> dict[str, list[str]]:
    return {
        kind: sorted((await conn.execute(text(query))).scalars())
        for kind, query in _SNAPSHOT_QUERIES.items()
    }


def _run(connection: Connection, app_role: str, *, up_to: str = "", down_to: str = "") -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    cfg.attributes["app_role"] = app_role
    if up_to:
        command.upgrade(cfg, up_to)
    else:
        command.downgrade(cfg, down_to)


async def _current(url: URL) -> str:
    async with owner_connection(url) as conn:
        return str((await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar())


@pytest.fixture
async def fresh_url() -> AsyncIterator[URL]:
    server = server_url()
    url = await create_database(server)
    yield url
    await drop_database(server, str(url.database))


def _revisions_after(revision: str) -> list[str]:
    """The revisions above ``revision``, oldest first."""
    script = ScriptDirectory.from_config(alembic_config())
    newest_first = [rev.revision for rev in script.walk_revisions(base=revision, head="heads")]
    return [rev for rev in reversed(newest_first) if rev != revision]


async def test_later_migrations_come_down_to_the_schema_they_went_up_from(
    fresh_url: URL,
) -> None:
    app_role = settings_for(fresh_url).app_role
    later = _revisions_after(LAST_FORWARD_ONLY)
    assert later and later[-1] == head_revision()

    # up one revision at a time, the schema recorded at each
    schema_at: dict[str, dict[str, list[str]]] = {}
    for revision in [LAST_FORWARD_ONLY, *later]:
        async with owner_connection(fresh_url) as conn:
            await conn.run_sync(_run, app_role, up_to=revision)
            schema_at[revision] = await _snapshot(conn)

    # down one at a time: each downgrade gives back exactly the schema below it
    below_each = [LAST_FORWARD_ONLY, *later[:-1]]
    for revision, below in zip(reversed(later), reversed(below_each), strict=True):
        async with owner_connection(fresh_url) as conn:
            await conn.run_sync(_run, app_role, down_to=below)
            schema = await _snapshot(conn)
        for kind, rows in schema_at[below].items():
            assert schema[kind] == rows, f"{kind} differ after {revision} came down to {below}"

    # the forward-only line refuses, and its refusal changes nothing (one transaction)
    with pytest.raises(NotImplementedError):
        async with owner_connection(fresh_url) as conn:
            await conn.run_sync(_run, app_role, down_to="-1")
    assert await _current(fresh_url) == LAST_FORWARD_ONLY

    async with owner_connection(fresh_url) as conn:
        await conn.run_sync(_run, app_role, up_to="head")
        back_at_head = await _snapshot(conn)
    assert back_at_head == schema_at[head_revision()]
