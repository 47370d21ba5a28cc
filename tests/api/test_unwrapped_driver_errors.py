"""A connection killed while the pool sets it up raises the driver's own error, which
SQLAlchemy does not wrap: it is the database being unavailable (503, retry), never a 500."""

from __future__ import annotations

import asyncpg
import pytest

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
