"""Schema migrations (alembic) and reference data set-up, run as the owner role."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.engine import URL

from api.db.engine import app_url, owner_connection
from api.db.reference import load_reference_data
from api.settings import Settings

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Any constant shared by concurrent starters: only one migrates at a time.
_MIGRATION_LOCK_KEY = 0x6775696368657401


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


async def migrate(settings: Settings, owner: URL) -> None:
    """Bring the schema to head, set the runtime role's password, load reference data."""
    async with owner_connection(owner) as conn:
        await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK_KEY})
        await conn.run_sync(_upgrade, settings.app_role)
        password = app_url(owner, settings).password
        if password:
            # ALTER ROLE takes no bind parameters; quote the literal as PostgreSQL does.
            literal = "'" + password.replace("'", "''") + "'"
            await conn.execute(
                text(_retrying(f"ALTER ROLE {settings.app_role} PASSWORD {literal}"))
            )
        await load_reference_data(conn)
    log.info("database migrated", extra={"revision": head_revision()})


def _retrying(statement: str) -> str:
    """``statement`` on the server-wide role table, retried while another database of the
    same server changes the role at the same time ("tuple concurrently updated")."""
    return f"""
        DO $retry$ BEGIN
          FOR attempt IN 1..50 LOOP
            BEGIN
              {statement};
              EXIT;
            EXCEPTION WHEN internal_error THEN
              PERFORM pg_sleep(0.02 * attempt);
            END;
          END LOOP;
        END $retry$;
    """


def _upgrade(connection: Connection, app_role: str) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    cfg.attributes["app_role"] = app_role
    command.upgrade(cfg, "head")
