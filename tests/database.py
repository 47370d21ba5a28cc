"""The PostgreSQL server the tests use, and a fresh database per run.

``DATABASE_URL`` names a server (the machine's, in CI): the run creates its own database on
it and drops it at the end. Without it, an embedded server starts in a temporary folder of
this run, deleted at exit. Each pytest-xdist worker is a process of its own, so it gets its
own database (and its own embedded server, and its own signing keys).
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import uuid
from functools import cache
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import URL

from api.db.engine import asyncpg_url, create_engine, start_embedded
from api.settings import Settings


@cache
def run_dir() -> Path:
    """A temporary folder of this process (keys, embedded server), removed at exit: runs of
    other checkouts, or other workers of this run, never share one."""
    parent = os.environ.get("GUICHET_TEST_DATA_DIR") or None
    path = Path(tempfile.mkdtemp(prefix="guichet-test-", dir=parent))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def server_url() -> URL:
    raw = os.environ.get("DATABASE_URL")
    if raw:
        return asyncpg_url(raw)
    return start_embedded(run_dir(), delete_on_exit=True)


async def create_database(server: URL) -> URL:
    name = f"guichet_test_{uuid.uuid4().hex[:10]}"
    engine = create_engine(server, pool_size=1, max_overflow=0)
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    await engine.dispose()
    return server.set(database=name)


async def drop_database(server: URL, database: str) -> None:
    engine = create_engine(server, pool_size=1, max_overflow=0)
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
    await engine.dispose()


def test_settings(database_url: URL, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url.render_as_string(hide_password=False),
        "data_dir": run_dir() / "data",
        "auto_migrate": False,
        "log_level": "WARNING",
    }
    values.update(overrides)
    return Settings.model_validate(values)
