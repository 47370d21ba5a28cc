"""Database connections: the owner (migrations, set-up) and the runtime role (requests).

The service is configured with one ``DATABASE_URL`` naming a role allowed to own the schema.
Migrations create a second role, ``Settings.app_role``, that owns nothing and cannot bypass
row-level security; every request runs on a pool logged in as that role, so a bug in a
repository filter meets the RLS policies instead of another partner's rows. The runtime role
reuses the owner's host, database and (unless configured) password.

With ``DATABASE_URL`` unset, an embedded PostgreSQL (``pgserver``) starts in
``Settings.data_dir`` and stops with the process.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import asyncpg
from sqlalchemy import text
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_dbapi
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine

from api.settings import Settings

log = logging.getLogger(__name__)

EMBEDDED_DATABASE = "guichet"


def asyncpg_url(raw: str) -> URL:
    """Accept ``postgresql://``, ``postgres://`` or ``postgresql+asyncpg://`` URLs."""
    url = make_url(raw.replace("postgres://", "postgresql://", 1))
    return url.set(drivername="postgresql+asyncpg")


def start_embedded(data_dir: Path, *, delete_on_exit: bool = False) -> URL:
    """Start (or reuse) the embedded server in ``data_dir/pg`` and return the owner URL.

    The server stops when the last process using it exits (``delete_on_exit`` also removes
    its files: the tests' throw-away servers). Exiting on SIGTERM as on Ctrl-C, and
    forgetting the processes that died without saying so, make sure it does stop.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = data_dir.resolve() / "pg"
    exit_cleanly_on_sigterm()
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); harmless here.
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
        import pgserver  # imported lazily: only the embedded default needs it
        from pgserver.postgres_server import PostgresServer

        with PostgresServer._lock:
            _forget_dead_users(pgdata)
        server = pgserver.get_server(  # type: ignore[attr-defined]
            pgdata, cleanup_mode="delete" if delete_on_exit else "stop"
        )
    exists = server.psql(
        f"SELECT 1 FROM pg_database WHERE datname = '{EMBEDDED_DATABASE}';"  # noqa: S608
    )
    if "1 row" not in exists:
        server.psql(f"CREATE DATABASE {EMBEDDED_DATABASE};")
    return asyncpg_url(server.get_uri(EMBEDDED_DATABASE))


def _forget_dead_users(pgdata: Path) -> None:
    """pgserver stops the server when the last process in ``.handle_pids.json`` exits; a
    process killed before it could remove itself would keep the server alive for ever."""
    handles = pgdata / ".handle_pids.json"
    try:
        pids = json.loads(handles.read_text())
    except (OSError, ValueError):
        return
    alive = [pid for pid in pids if isinstance(pid, int) and _is_running(pid)]
    if alive != pids:
        handles.write_text(json.dumps(alive))


def _is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def exit_cleanly_on_sigterm() -> None:
    """Python's default SIGTERM kills the process without running ``atexit``, where
    pgserver stops the server; uvicorn re-raises the signal after its graceful shutdown. A
    ``SystemExit`` instead runs the exit handlers, as Ctrl-C does."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _exit_on_signal)


def _exit_on_signal(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def owner_url(settings: Settings) -> URL:
    if settings.database_url:
        return asyncpg_url(settings.database_url)
    return start_embedded(settings.data_dir)


def app_url(owner: URL, settings: Settings) -> URL:
    password = (
        settings.app_role_password.get_secret_value()
        if settings.app_role_password
        else owner.password
    )
    return owner.set(username=settings.app_role, password=password)


def create_engine(
    url: URL,
    *,
    pool_size: int = 5,
    max_overflow: int = 5,
    pool_timeout: float = 30,
    statement_timeout_ms: int = 0,
) -> AsyncEngine:
    # No JIT: it compiles again at every execution and never pays off on the statements of
    # requests. The access rule's definer functions carry deliberate costs (COST 500 for a
    # policy's per-row check) that push a batch past jit_above_cost: a sync batch of 1,000
    # spent 0.66 s compiling, and one person's read 0.4 ms of its 0.5 ms.
    server_settings = {"application_name": "guichet", "jit": "off"}
    if statement_timeout_ms:
        server_settings["statement_timeout"] = str(statement_timeout_ms)
    engine = _create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=pool_timeout,
        # No pre-ping: it costs a round trip per request. Recycled connections and /readyz
        # cover a restarted server.
        pool_recycle=1800,
        # Parameters hold personal data (names, NIR ciphertext, e-mails): never put them into
        # an exception's text, which may end up in a log.
        hide_parameters=True,
        connect_args={"server_settings": server_settings},
    )
    return engine


#: driver errors that escape SQLAlchemy unwrapped: a connection killed while the pool sets it
#: up (its on-connect hooks, e.g. the JSON codec) raises the driver's own "connection is
#: closed"; like a refused connection, the database is unavailable for this request
UNWRAPPED_CONNECTION_ERRORS: tuple[type[Exception], ...] = (
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.PostgresConnectionError,
)

#: what a statement run on the driver connection (api.db.driver) raises, unwrapped: the
#: server's errors, with the SQLSTATE a wrapped one carries, the driver's own state errors (a
#: connection killed mid-statement), which SQLAlchemy wraps as an error without SQLSTATE, and
#: the adapter's DBAPI errors (beginning the transaction there, outside SQLAlchemy's wrapping)
DRIVER_ERRORS: tuple[type[Exception], ...] = (
    asyncpg.PostgresError,
    asyncpg.exceptions.InternalClientError,
    AsyncAdapt_asyncpg_dbapi.Error,
)
DRIVER_INTEGRITY_ERROR: type[Exception] = asyncpg.IntegrityConstraintViolationError


@dataclass
class Database:
    """The two engines of a running service."""

    owner_url: URL
    app_engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]

    @classmethod
    def connect(cls, settings: Settings, owner: URL | None = None) -> Database:
        owner = owner or owner_url(settings)
        engine = create_engine(
            app_url(owner, settings),
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            # A request waits a little for a connection, then answers 503 + Retry-After; a
            # runaway statement is cancelled rather than holding a connection for minutes.
            pool_timeout=settings.db_pool_timeout_seconds,
            statement_timeout_ms=settings.db_statement_timeout_ms,
        )
        return cls(owner_url=owner, app_engine=engine, sessionmaker=make_sessionmaker(engine))

    async def dispose(self) -> None:
        await self.app_engine.dispose()

    async def is_ready(self, expected_head: str) -> bool:
        """Reachable and migrated to ``expected_head``."""
        try:
            async with self.app_engine.connect() as conn:
                current = await conn.scalar(text("SELECT version_num FROM alembic_version"))
        except Exception:
            log.warning("readiness check failed", exc_info=False)
            return False
        return bool(current == expected_head)


def make_sessionmaker(
    bind: AsyncEngine | AsyncConnection, *, savepoints: bool = False
) -> async_sessionmaker[AsyncSession]:
    """Sessions that never expire on commit; ``savepoints`` joins an outer transaction
    (tests roll it back at the end)."""
    if savepoints:
        return async_sessionmaker(
            bind=bind,
            expire_on_commit=False,
            autoflush=False,
            join_transaction_mode="create_savepoint",
        )
    return async_sessionmaker(bind=bind, expire_on_commit=False, autoflush=False)


@asynccontextmanager
async def owner_connection(url: URL) -> AsyncIterator[AsyncConnection]:
    """A short-lived owner connection for migrations and set-up commands."""
    engine = create_engine(url, pool_size=1, max_overflow=0)
    try:
        async with engine.begin() as conn:
            yield conn
    finally:
        await engine.dispose()


def pool_status(engine: AsyncEngine) -> dict[str, int]:
    pool = engine.pool
    return {
        "size": int(getattr(pool, "size", lambda: 0)()),
        "checked_out": int(getattr(pool, "checkedout", lambda: 0)()),
        "overflow": int(getattr(pool, "overflow", lambda: 0)()),
    }


__all__ = [
    "Database",
    "app_url",
    "asyncpg_url",
    "create_engine",
    "exit_cleanly_on_sigterm",
    "make_sessionmaker",
    "owner_connection",
    "owner_url",
    "pool_status",
]
