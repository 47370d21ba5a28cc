"""The driver connection under a session's transaction, for the statements every request runs.

Through SQLAlchemy's ORM session a statement costs ~0.2 ms of CPU in Python (compiling from
the cache, the execution context, the result proxy, greenlet switches) where asyncpg alone
costs ~0.04 ms: on the hottest reads that is most of the request. The few statements run on
every request (the transaction's identity, the person read) go to the asyncpg connection the
session already holds, as prepared statements (asyncpg's per-connection cache).

They run **inside the session's own transaction**: :func:`driver_connection` begins it the
way SQLAlchemy would on its first statement, so the session's commit or rollback ends it,
with everything else the request ran through the session. Settings stay transaction-local
(``set_config(…, true)``) and the pool resets a returned connection as before: nothing a
request set here survives its transaction.

A request's session (api.http.deps) goes further: most requests run nothing but driver
statements (a cached scope, the person read), and the session's own transaction around them
(its connection, its begin, its commit through a greenlet) cost ~0.1 ms of CPU. Its
connection is checked out on demand (:func:`on_demand`): the transaction is begun and ended
on the driver, and the session is bound to that connection, so that the first ORM statement
joins the same transaction, which the session's commit or rollback then ends
(:func:`end_request`). One connection, one transaction, whichever runs first.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, cast

import asyncpg
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.util.concurrency import greenlet_spawn

from api.db.versioned import store_committed

#: in ``session.info``: the session's connection is checked out on demand (a request's)
_ON_DEMAND = "driver_on_demand"
#: in ``session.info``: the connection checked out on demand, its transaction begun
_CHECKOUT = "driver_checkout"


@dataclass(frozen=True)
class _Checkout:
    connection: Connection  # SQLAlchemy's, the session's bind: the ORM joins it
    adapted: Any  # SQLAlchemy's asyncpg adapter, which holds the driver's transaction
    driver: asyncpg.Connection


def on_demand(session: AsyncSession) -> AsyncSession:
    """Mark a session bound to an engine to check its connection out on demand: its owner
    ends it with :func:`end_request`, never with its own commit, rollback or close. A session
    bound to a connection (the tests' savepoints) is left as it is."""
    if isinstance(session.bind, AsyncEngine):
        session.info[_ON_DEMAND] = True
    return session


async def driver_connection(session: AsyncSession) -> asyncpg.Connection:
    """The asyncpg connection of the session's transaction, the transaction begun.

    A session joined to an outer transaction (the tests' savepoints) is already in one.
    """
    checkout: _Checkout | None = session.info.get(_CHECKOUT)
    if checkout is not None:
        return checkout.driver
    if session.info.get(_ON_DEMAND) and not session.sync_session.in_transaction():
        return (await _check_out(session)).driver
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    adapted: Any = raw.dbapi_connection
    await _begin(adapted)
    return _in_transaction(raw.driver_connection)


async def _begin(adapted: Any) -> None:
    if adapted._transaction is None:
        # SQLAlchemy begins lazily, at its first statement on the connection; beginning here
        # the same way makes its commit and rollback end what we run (asserted by
        # tests/store/test_driver_connection.py against the installed SQLAlchemy)
        async with adapted._execute_mutex:
            if adapted._transaction is None:
                await adapted._start_transaction()


def _in_transaction(driver: Any) -> asyncpg.Connection:
    if not driver.is_in_transaction():  # never run a request's statements outside one
        raise RuntimeError("the session's connection is not in a transaction")
    return cast(asyncpg.Connection, driver)


async def _check_out(session: AsyncSession) -> _Checkout:
    engine = cast(AsyncEngine, session.bind)
    connection = await greenlet_spawn(Connection, engine.sync_engine)  # the pool's checkout
    try:
        raw = connection.connection
        adapted: Any = raw.dbapi_connection
        await _begin(adapted)
        checkout = _Checkout(connection, adapted, _in_transaction(raw.driver_connection))
    except BaseException:
        await greenlet_spawn(connection.invalidate)
        await greenlet_spawn(connection.close)
        raise
    # from now on the session's ORM statements run on this connection, in this transaction
    session.sync_session.bind = connection
    session.info[_CHECKOUT] = checkout
    return checkout


async def end_request(session: AsyncSession, *, commit: bool) -> None:
    """Commit (or roll back) and close a request's session, and give its connection back.

    What the request read for the caches of api.db.versioned is stored once its transaction
    is committed, never before."""
    checkout: _Checkout | None = session.info.pop(_CHECKOUT, None)
    if checkout is None:
        await _end_session(session, commit=commit)
        return
    if not commit:
        # shielded: a cancelled request still rolls back and gives its connection back
        await asyncio.shield(asyncio.create_task(_discard(session, checkout)))
        return
    try:
        if session.sync_session.in_transaction():
            # the ORM ran: its connection joined (begun at SQLAlchemy's level), so that the
            # session's commit flushes and commits the driver's transaction with its own
            await session.connection()
            await session.commit()
        else:
            # only driver statements ran: the session has no transaction to commit
            await checkout.adapted._call_and_discard(checkout.adapted._transaction.commit)
            store_committed(session.sync_session)
        if checkout.adapted._transaction is not None:
            raise RuntimeError("the request's transaction outlived its commit")
    except BaseException:
        await asyncio.shield(asyncio.create_task(_discard(session, checkout)))
        raise
    await greenlet_spawn(checkout.connection.close)  # back to the pool
    session.sync_session.close()


async def _discard(session: AsyncSession, checkout: _Checkout) -> None:
    try:
        if session.sync_session.in_transaction():
            await session.rollback()
        if checkout.adapted._transaction is not None:
            await checkout.adapted._call_and_discard(checkout.adapted._transaction.rollback)
    except Exception:
        # a connection that cannot roll back is not given back to the pool as it is
        await greenlet_spawn(checkout.connection.invalidate)
        raise
    finally:
        await greenlet_spawn(checkout.connection.close)
        session.sync_session.close()


async def _end_session(session: AsyncSession, *, commit: bool) -> None:
    if not commit:
        async with session:  # closed in a task shielded from cancellation
            await session.rollback()
        return
    try:
        await session.commit()
    except BaseException:
        async with session:
            await session.rollback()
        raise
    if session.sync_session.in_transaction():
        await session.close()  # not expected: nothing runs between the commit and here
    else:
        # Committed: the connection is back in the pool and closing runs no I/O, so it runs
        # here rather than in a task of its own (``async with`` shields the close that way,
        # one task per request)
        session.sync_session.close()
