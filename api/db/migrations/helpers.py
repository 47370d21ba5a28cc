"""Small helpers shared by migrations: the runtime role, grants, row-level security."""

from __future__ import annotations

from alembic import context, op


def app_role() -> str:
    role = context.config.attributes["app_role"]
    assert isinstance(role, str) and role.isidentifier(), role
    return role


def grant(table: str, privileges: str) -> None:
    op.execute(f"GRANT {privileges} ON {table} TO {app_role()}")


def enable_rls(table: str) -> None:
    """RLS on and forced: even the table owner goes through the policies."""
    op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
