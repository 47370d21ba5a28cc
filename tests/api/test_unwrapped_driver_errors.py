"""A connection killed while the pool sets it up raises the driver's own error, which
SQLAlchemy does not wrap: it is the database being unavailable (503, retry), never a 500."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_dbapi

from api.http.errors import database_problem


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.exceptions.InterfaceError("connection is closed"),
        asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed"),
    ],
)
def test_a_driver_connection_error_is_unavailability(error: Exception) -> None:
    problem = database_problem(error)
    assert problem is not None
    assert problem.status == 503
    assert problem.headers["Retry-After"]


def test_an_error_that_is_not_the_database_is_left_alone() -> None:
    assert database_problem(ValueError("not the database")) is None


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (asyncpg.exceptions.QueryCanceledError("canceling statement due to timeout"), 503),
        (asyncpg.exceptions.DeadlockDetectedError("deadlock detected"), 503),
        (asyncpg.exceptions.UniqueViolationError("duplicate key value"), 409),
        (asyncpg.exceptions.StringDataRightTruncationError("value too long"), 422),
        # the connection killed mid-statement: SQLAlchemy wraps it without SQLSTATE (503)
        (asyncpg.exceptions.InternalClientError("cannot switch to state 15"), 503),
        # the same, raised while the driver connection begins the session's transaction
        (AsyncAdapt_asyncpg_dbapi.InternalError("cannot switch to state 15"), 503),
    ],
)
def test_a_statement_run_on_the_driver_connection_answers_as_its_wrapped_form(
    error: Exception, status: int
) -> None:
    """The hot statements run on the driver connection (api.db.driver) raise asyncpg's own
    errors: the same SQLSTATE answers the same problem as through SQLAlchemy."""
    problem = database_problem(error)
    assert problem is not None
    assert problem.status == status
