"""Statements run on the session's driver connection (api.db.driver) belong to the session's
transaction, and nothing a request set there survives it on the pooled connection: the next
request on the same connection starts with no identity, whether the first committed, rolled
back or failed half-way."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from api.db.context import DbContext, set_db_context
from api.db.driver import driver_connection
from api.db.engine import app_url, create_engine, make_sessionmaker
from api.db.versioned import VersionedCache
from api.http.deps import _session, begin_request, finish_request
from api.settings import Settings

IDENTITY = ("guichet.context", "guichet.organisation_id", "guichet.principal_id")
READ_IDENTITY = text(
    "SELECT pg_backend_pid() AS pid, current_setting('guichet.context', true) AS context, "
    "current_setting('guichet.organisation_id', true) AS organisation, "
    "current_setting('guichet.principal_id', true) AS principal"
)


@pytest.fixture
async def one_connection(database_url: URL, settings: Settings) -> AsyncIterator[AsyncEngine]:
    """A runtime-role pool of exactly one connection: every session gets the same one."""
    engine = create_engine(app_url(database_url, settings), pool_size=1, max_overflow=0)
    yield engine
    await engine.dispose()


async def _identity(sessions: async_sessionmaker[AsyncSession]) -> tuple[int, tuple[str, ...]]:
    """What the next session on the pooled connection sees, before it sets anything."""
    async with sessions() as session:
        driver = await driver_connection(session)
        row = (await session.execute(READ_IDENTITY)).one()
        # the driver's view and SQLAlchemy's are one transaction
        assert await driver.fetchval("SELECT current_setting('guichet.context', true)") == (
            row.context
        )
        await session.rollback()
    return row.pid, tuple(v or "" for v in (row.context, row.organisation, row.principal))


async def _act(session: AsyncSession) -> int:
    await set_db_context(
        session,
        context=DbContext.REQUEST,
        organisation_id=uuid.uuid4(),
        principal_id=uuid.uuid4(),
        read_version=True,
    )
    row = (await session.execute(READ_IDENTITY)).one()
    assert row.context == "request" and row.organisation and row.principal
    return int(row.pid)


async def test_a_committed_request_leaves_no_identity_on_its_connection(
    one_connection: AsyncEngine,
) -> None:
    sessions = make_sessionmaker(one_connection)
    async with sessions() as session:
        pid = await _act(session)
        await session.commit()
    after_pid, identity = await _identity(sessions)
    assert after_pid == pid  # the same pooled connection
    assert identity == ("", "", "")


async def test_a_failed_request_leaves_no_identity_and_no_open_transaction(
    one_connection: AsyncEngine,
) -> None:
    sessions = make_sessionmaker(one_connection)
    with pytest.raises(RuntimeError, match="half-way"):
        async with sessions() as session:
            pid = await _act(session)
            raise RuntimeError("half-way")
    async with one_connection.connect() as conn:
        raw = await conn.get_raw_connection()
        assert raw.driver_connection is not None
        assert not raw.driver_connection.is_in_transaction()
    after_pid, identity = await _identity(sessions)
    assert after_pid == pid
    assert identity == ("", "", "")


async def test_driver_statements_commit_and_roll_back_with_the_session(
    one_connection: AsyncEngine,
) -> None:
    """A session-level setting (which requests never use: theirs are transaction-local) shows
    whether the driver's statement was inside the session's transaction: PostgreSQL undoes
    it on rollback and keeps it on commit."""
    sessions = make_sessionmaker(one_connection)
    probe = "SELECT current_setting('guichet.probe', true)"
    async with sessions() as session:
        driver = await driver_connection(session)
        await driver.execute("SELECT set_config('guichet.probe', 'rolled back', false)")
        await session.rollback()
    async with sessions() as session:
        assert (await session.execute(text(probe))).scalar() in (None, "")
        driver = await driver_connection(session)
        await driver.execute("SELECT set_config('guichet.probe', 'committed', false)")
        await session.commit()
    async with sessions() as session:
        assert (await session.execute(text(probe))).scalar() == "committed"
        await session.execute(text("RESET guichet.probe"))
        await session.commit()


async def test_the_driver_connection_is_always_in_the_sessions_transaction(
    one_connection: AsyncEngine,
) -> None:
    sessions = make_sessionmaker(one_connection)
    async with sessions() as session:
        first = await driver_connection(session)
        assert first.is_in_transaction()
        await session.execute(text("SELECT 1"))
        assert await driver_connection(session) is first  # begun once
        await session.commit()
        assert not first.is_in_transaction()
        again = await driver_connection(session)  # a new transaction after the commit
        assert again.is_in_transaction()
        await session.rollback()


async def test_a_requests_session_gives_its_connection_back_committed_or_rolled_back(
    one_connection: AsyncEngine,
) -> None:
    """The request's session dependency (api.http.deps): committed, the session is closed in
    place and the connection is back in the pool with nothing of the request's transaction;
    failed, it is rolled back and closed the same way."""
    sessions = make_sessionmaker(one_connection)
    pool: Any = one_connection.pool

    request = _request_on(sessions)
    begin_request(request.scope)
    session = await _session(request)
    assert await _session(request) is session  # one per request
    pid = await _act(session)
    assert pool.checkedout() == 1
    await finish_request(request.scope, commit=True)
    assert pool.checkedout() == 0
    assert not session.sync_session.in_transaction()
    assert await _identity(sessions) == (pid, ("", "", ""))

    request = _request_on(sessions)
    begin_request(request.scope)
    session = await _session(request)
    assert await _act(session) == pid
    await finish_request(request.scope, commit=False)
    assert pool.checkedout() == 0
    assert await _identity(sessions) == (pid, ("", "", ""))


async def test_a_session_without_a_route_to_end_it_is_refused(one_connection: AsyncEngine) -> None:
    """A route that is not a TransactionRoute never calls begin_request: its session would
    stay open, its connection out of the pool."""
    request = _request_on(make_sessionmaker(one_connection))
    with pytest.raises(RuntimeError, match="not a TransactionRoute"):
        await _session(request)
    assert one_connection.pool.checkedout() == 0  # type: ignore[attr-defined]


def _request_on(sessions: async_sessionmaker[AsyncSession]) -> Any:
    return SimpleNamespace(
        app=SimpleNamespace(state=SimpleNamespace(sessionmaker=sessions)), scope={}
    )


async def _route_session(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A request's session as its route opens and ends it (api.http.deps.TransactionRoute):
    the endpoint runs at the ``yield``, raising into it when it fails."""
    request = _request_on(sessions)
    begin_request(request.scope)
    try:
        yield await _session(request)
    except BaseException:
        await finish_request(request.scope, commit=False)
        raise
    await finish_request(request.scope, commit=True)


PROBE = "SELECT current_setting('guichet.probe', true)"


async def _probe(sessions: async_sessionmaker[AsyncSession]) -> str:
    async with sessions() as session:
        value = (await session.execute(text(PROBE))).scalar()
        if value:
            await session.execute(text("RESET guichet.probe"))
            await session.commit()
    return value or ""


@pytest.mark.parametrize("orm_after", [False, True])
async def test_a_request_commits_its_driver_statements_or_rolls_them_back(
    one_connection: AsyncEngine, orm_after: bool
) -> None:
    """A request's session checks its connection out for the driver (api.db.driver): with
    only driver statements, or with ORM statements after them, the request's end commits
    them, or rolls them back when the handler failed, and gives the connection back."""
    sessions = make_sessionmaker(one_connection)
    pool: Any = one_connection.pool

    async def run(value: str) -> AsyncSession:
        begin_request(request.scope)
        session = await _session(request)
        driver = await driver_connection(session)
        await driver.execute(f"SELECT set_config('guichet.probe', '{value}', false)")
        if orm_after:  # the ORM joins the same transaction on the same connection
            row = (await session.execute(text(f"SELECT pg_backend_pid() AS pid, ({PROBE})"))).one()
            assert row.pid == driver.get_server_pid() and row[1] == value
        assert pool.checkedout() == 1
        return session

    request = _request_on(sessions)
    session = await run("committed")
    await finish_request(request.scope, commit=True)
    assert pool.checkedout() == 0
    assert not session.sync_session.in_transaction()
    assert await _probe(sessions) == "committed"

    request = _request_on(sessions)
    await run("rolled back")
    await finish_request(request.scope, commit=False)
    assert pool.checkedout() == 0
    assert await _probe(sessions) == ""


async def test_a_request_whose_orm_ran_first_gives_the_driver_the_same_transaction(
    one_connection: AsyncEngine,
) -> None:
    sessions = make_sessionmaker(one_connection)
    request = _route_session(sessions)
    session = await anext(request)
    pid = (await session.execute(text("SELECT pg_backend_pid()"))).scalar()
    driver = await driver_connection(session)
    assert driver.get_server_pid() == pid and driver.is_in_transaction()
    await driver.execute("SELECT set_config('guichet.probe', 'committed', false)")
    with pytest.raises(StopAsyncIteration):
        await anext(request)
    assert await _probe(sessions) == "committed"


async def test_a_request_stores_what_it_read_only_once_committed(
    one_connection: AsyncEngine,
) -> None:
    """The scope and organisation caches (api.db.versioned) keep a value read by a request
    whose transaction ran on the driver alone once it committed, never when it failed."""
    cache: VersionedCache[str] = VersionedCache()
    sessions = make_sessionmaker(one_connection)
    for outcome in ("failed", "committed"):
        request = _route_session(sessions)
        session = await anext(request)
        await set_db_context(  # reads the access version; nothing runs through the ORM
            session, context=DbContext.REQUEST, principal_id=uuid.uuid4(), read_version=True
        )
        cache.put(session, outcome, outcome)
        assert cache.peek(outcome) is None  # not before the commit
        if outcome == "failed":
            with pytest.raises(RuntimeError):
                await request.athrow(RuntimeError("handler failed"))
        else:
            with pytest.raises(StopAsyncIteration):
                await anext(request)
    assert cache.peek("failed") is None
    assert cache.peek("committed") == "committed"


async def test_a_request_on_a_connection_the_server_closed_does_not_give_it_back(
    one_connection: AsyncEngine, database_url: URL
) -> None:
    """A pooled connection whose backend ended (a restart, a terminated backend) fails the
    request that draws it, at BEGIN on the driver, and is not given back to the pool as it
    is: the next request gets a new connection instead of the same failure for ever."""
    sessions = make_sessionmaker(one_connection)

    async def request_pid() -> int:
        request = _route_session(sessions)
        session = await anext(request)
        try:
            pid = (await driver_connection(session)).get_server_pid()
        except Exception as error:  # thrown into the dependency, as FastAPI does
            with pytest.raises(type(error)):
                await request.athrow(error)
            raise
        with pytest.raises(StopAsyncIteration):
            await anext(request)
        return pid

    first = await request_pid()
    owner = create_engine(database_url, pool_size=1, max_overflow=0)
    try:
        async with owner.connect() as conn:
            await conn.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": first})
    finally:
        await owner.dispose()
    with pytest.raises(Exception, match=r"(?i)connection"):
        await request_pid()
    assert await request_pid() != first
