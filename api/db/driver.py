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
"""

from __future__ import annotations

from typing import Any, cast

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession


async def driver_connection(session: AsyncSession) -> asyncpg.Connection:
    """The asyncpg connection of the session's transaction, the transaction begun.

    A session joined to an outer transaction (the tests' savepoints) is already in one.
    """
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    adapted: Any = raw.dbapi_connection
    if adapted._transaction is None:
        # SQLAlchemy begins lazily, at its first statement on the connection; beginning here
        # the same way makes its commit and rollback end what we run (asserted by
        # tests/store/test_driver_connection.py against the installed SQLAlchemy)
        async with adapted._execute_mutex:
            if adapted._transaction is None:
                await adapted._start_transaction()
    driver = cast(asyncpg.Connection, raw.driver_connection)
    if not driver.is_in_transaction():  # never run a request's statements outside one
        raise RuntimeError("the session's connection is not in a transaction")
    return driver
