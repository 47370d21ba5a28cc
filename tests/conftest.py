"""Fixtures: one fresh, migrated database per run; each test inside a rolled-back transaction
on a connection of the runtime role (the same non-owner role as production, so RLS applies)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import IO

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from api.auth.throttle import LoginThrottle
from api.db.engine import Database, app_url, create_engine, make_sessionmaker, owner_connection
from api.db.migrate import migrate
from api.main import create_app
from api.settings import Settings
from tests.database import create_database, drop_database, server_url, test_settings
from tests.world import World, load_world

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
async def database_url() -> AsyncIterator[URL]:
    server = server_url()
    url = await create_database(server)
    await migrate(test_settings(url), url)
    yield url
    await drop_database(server, str(url.database))


@pytest.fixture(scope="session")
def settings(database_url: URL) -> Settings:
    return test_settings(database_url)


@pytest.fixture(scope="session")
async def world(settings: Settings, database_url: URL) -> World:
    """The demo territory, committed once for the whole run."""
    return await load_world(settings, database_url)


@pytest.fixture
def as_persona(app: FastAPI, world: World) -> Callable[[str], dict[str, str]]:
    """Authorization headers of a persona (none for ``anonymous``)."""

    def headers(persona: str) -> dict[str, str]:
        token = world.token(app.state.keyring, app.state.settings, persona)
        return {"Authorization": f"Bearer {token}"} if token else {}

    return headers


@pytest.fixture(scope="session")
async def app_engine(database_url: URL, settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(app_url(database_url, settings), pool_size=5, max_overflow=20)
    yield engine
    await engine.dispose()


@pytest.fixture
async def connection(app_engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A runtime-role connection whose transaction is rolled back after the test."""
    async with app_engine.connect() as conn:
        transaction = await conn.begin()
        try:
            yield conn
        finally:
            await transaction.rollback()


@pytest.fixture(scope="session")
def shared_app(settings: Settings, database_url: URL, app_engine: AsyncEngine) -> FastAPI:
    """The one app of the session: building it (routes, dependency graphs, keys) for every
    test cost more than many tests themselves. ``app`` rebinds it to each test's connection."""
    database = Database(
        owner_url=database_url, app_engine=app_engine, sessionmaker=make_sessionmaker(app_engine)
    )
    return create_app(settings, database=database)


@pytest.fixture
def app(shared_app: FastAPI, database_url: URL, connection: AsyncConnection) -> Iterator[FastAPI]:
    """The app, its requests on the test's rolled-back connection; what a test changes in its
    state (a throttle, a dependency override, a route it adds) is undone after it, and the
    login throttle starts empty for every test."""
    database = Database(
        owner_url=database_url,
        app_engine=connection.engine,
        sessionmaker=make_sessionmaker(connection, savepoints=True),
    )
    state = shared_app.state._state
    saved = dict(state)
    routes = list(shared_app.router.routes)  # a test may add one (an endpoint that fails)
    shared_app.state.db = database
    shared_app.state.sessionmaker = database.sessionmaker
    isolated_login_limits(shared_app)
    try:
        yield shared_app
    finally:
        state.clear()
        state.update(saved)
        shared_app.router.routes[:] = routes
        shared_app.dependency_overrides.clear()


def isolated_login_limits(app: FastAPI) -> FastAPI:
    """Login limits are shared in the database; a test's app counts under its own key, so
    that one test's failed logins do not throttle another's."""
    app.state.throttle = LoginThrottle(lambda: app.state.db.app_engine, os.urandom(32))
    return app


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture(scope="session")
def committing_app(settings: Settings, database_url: URL, app_engine: AsyncEngine) -> FastAPI:
    database = Database(
        owner_url=database_url, app_engine=app_engine, sessionmaker=make_sessionmaker(app_engine)
    )
    return create_app(settings, database=database)


@pytest.fixture(autouse=True)
async def _committed_statistics_forgotten(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """A test whose requests commit for real leaves people, referrals and their statistical
    rows in the run's database; the statistics tests, which read whole communes (Amiens),
    would count them and suppress cells by the disclosure rule depending on test order. The
    statistical rows such a test committed are removed after it (the rest stays), except those
    of aid requests: no test counts aids by commune, and one checks that every aid request
    has its row, whatever ran before it."""
    if not {"committing_client", "live_server"} & set(request.fixturenames):
        yield
        return
    database_url: URL = request.getfixturevalue("database_url")
    async with owner_connection(database_url) as conn:
        started = await conn.scalar(text("SELECT clock_timestamp()"))
    yield
    async with owner_connection(database_url) as conn:
        await conn.execute(
            text("DELETE FROM stat_fact WHERE refreshed_at >= :t AND measure <> 'aids'"),
            {"t": started},
        )


@pytest.fixture
async def committing_client(committing_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client whose requests commit for real, each on its own pooled connection (for
    concurrency tests). What it writes stays in this run's database."""
    isolated_login_limits(committing_app)
    transport = httpx.ASGITransport(app=committing_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(
    env: dict[str, str], cwd: Path, timeout: float = 60
) -> tuple[subprocess.Popen[bytes], str]:
    """Start `guichet serve` in a subprocess and wait until it answers /healthz."""
    port = _free_port()
    # Output goes to a file, not a pipe: a pipe nobody reads until the end fills up (64 KiB
    # of logs) and blocks the server in the middle of a request.
    log = tempfile.TemporaryFile()  # noqa: SIM115 — closed by stop_server
    proc = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "serve", "--port", str(port), "--workers", "1"],
        cwd=cwd,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    _SERVER_LOGS[proc.pid] = log
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            output = _output(proc)
            raise RuntimeError(f"server exited with {proc.returncode}:\n{output[-4000:]}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not start in time")


def stop_server(proc: subprocess.Popen[bytes]) -> str:
    """SIGTERM, then its whole output."""
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    return _output(proc)


_SERVER_LOGS: dict[int, IO[bytes]] = {}


def _output(proc: subprocess.Popen[bytes]) -> str:
    log = _SERVER_LOGS.pop(proc.pid, None)
    if log is None:
        return ""  # not started by start_server: its output went elsewhere
    log.seek(0)
    output = log.read().decode(errors="replace")
    log.close()
    return output


@pytest.fixture(scope="session")
def live_server(database_url: URL, settings: Settings) -> Iterator[str]:
    """The real service over HTTP on the test database (requests commit for real)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GUICHET_")}
    env.update(
        DATABASE_URL=database_url.render_as_string(hide_password=False),
        GUICHET_AUTO_MIGRATE="0",
        GUICHET_DATA_DIR=str(settings.data_dir),  # same signing keys as the tests
        GUICHET_LOG_LEVEL="WARNING",
    )
    proc, base = start_server(env, ROOT)
    yield base
    stop_server(proc)
