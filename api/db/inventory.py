"""The security inventory: every row-level security policy and every ``SECURITY DEFINER``
function of the schema, with the reason each function runs with its owner's rights (its
``COMMENT``), rendered as markdown from the catalogue of a migrated database.

The rendering is committed (``api/db/security_inventory.md``) and drift-tested
(``tests/store/test_security_inventory.py``), like ``openapi/openapi.json``: a policy or a
definer function added, changed or dropped without updating the inventory fails the suite.
Regenerate with ``guichet security-inventory``.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

INVENTORY_PATH = Path(__file__).resolve().parent / "security_inventory.md"

_DEFINERS = text(
    """
    SELECT replace(p.oid::regprocedure::text, ',', ', ') AS signature,
           coalesce(obj_description(p.oid, 'pg_proc'), '') AS reason,
           has_function_privilege(:app, p.oid, 'EXECUTE') AS app_may_call
    FROM pg_proc p
    WHERE p.pronamespace = 'public'::regnamespace AND p.prosecdef
    ORDER BY 1
    """
)

_TABLES = text(
    """
    SELECT c.relname AS name, c.relrowsecurity AS enabled, c.relforcerowsecurity AS forced
    FROM pg_class c
    WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')
      AND c.relname <> 'alembic_version'
    ORDER BY 1
    """
)

_POLICIES = text(
    """
    SELECT tablename, policyname, cmd, roles::text[] AS roles,
           coalesce(qual, '') AS qual, coalesce(with_check, '') AS with_check
    FROM pg_policies
    WHERE schemaname = 'public'
    ORDER BY tablename, policyname
    """
)


def _cell(value: str) -> str:
    return " ".join(value.split()).replace("|", "\\|")


async def definer_functions(conn: AsyncConnection, app_role: str) -> list[tuple[str, str, bool]]:
    rows = await conn.execute(_DEFINERS, {"app": app_role})
    return [(r.signature, r.reason, r.app_may_call) for r in rows]


async def render(conn: AsyncConnection, app_role: str) -> str:
    """The inventory of the database behind ``conn`` (any role may read the catalogue);
    ``app_role`` is named ``app`` and any other role ``owner``, so the text does not depend
    on the deployment's role names."""
    lines = [
        "# Security inventory",
        "",
        "Generated from a migrated database by `guichet security-inventory`; "
        "`tests/store/test_security_inventory.py` fails when it drifts. "
        "The access rule itself is `guichet_access` (migration 0016, `api/auth/access.py`).",
        "",
        "## SECURITY DEFINER functions",
        "",
        "| function | app role may call | why it runs with its owner's rights |",
        "| --- | --- | --- |",
    ]
    for signature, reason, may_call in await definer_functions(conn, app_role):
        lines.append(f"| `{signature}` | {'yes' if may_call else 'no'} | {_cell(reason)} |")
    lines += [
        "",
        "## Tables: row-level security",
        "",
        "| table | enabled | forced |",
        "| --- | --- | --- |",
    ]
    for t in await conn.execute(_TABLES):
        lines.append(
            f"| `{t.name}` | {'yes' if t.enabled else 'no'} | {'yes' if t.forced else 'no'} |"
        )
    lines += [
        "",
        "## Policies",
        "",
        "| table | policy | command | roles | using | with check |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for p in await conn.execute(_POLICIES):
        roles = ", ".join(sorted("app" if r == app_role else "owner" for r in p.roles))
        lines.append(
            f"| `{p.tablename}` | {p.policyname} | {p.cmd} | {roles} | "
            f"{_cell(p.qual)} | {_cell(p.with_check)} |"
        )
    return "\n".join(lines) + "\n"
