"""The bare baseline: what a scoped read minimally does, without the service around it.

    .venv/bin/python -m bench.bare --port 8001      # DATABASE_URL names the owner role

A Starlette application on one uvicorn worker (uvloop, httptools, as ``guichet serve``) and an
asyncpg pool logged in as the runtime role (``GUICHET_APP_ROLE``, default ``guichet_app``:
no ownership, no BYPASSRLS) of the service's size (``db_pool_size + db_max_overflow``).
``GET /person/{id}?organisation=…&principal=…`` runs one transaction: the two
``set_config(…, true)`` the row-level security policies read, then the primary-key read of
the person, which the ``beneficiary`` policy filters as it does for the service. It answers
the row as JSON (404 when the policy hides it). ``GET /healthz`` answers without the database.

This is the denominator of ``bench/read.py``: the same database work a person read cannot
avoid, with the least Python around it. No token, no scope, no audit.

``--framework fastapi`` serves the same work the way FastAPI's documentation writes it: the
pooled connection and its transaction from a ``yield`` dependency, the path and query
parameters declared and validated, the answer through a pydantic response model. It measures
what the framework the service is built on costs before the service does anything of its
own: the floor under any FastAPI endpoint making these four round trips.
"""

from __future__ import annotations

import argparse
import json
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, datetime
from typing import Annotated, Any

import asyncpg
import uvicorn
from fastapi import Depends, FastAPI
from pydantic import BaseModel, ConfigDict
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from api.db.engine import app_url, asyncpg_url
from api.settings import Settings

_SETTINGS = (
    "SELECT set_config('guichet.organisation_id', $1, true), "
    "set_config('guichet.principal_id', $2, true)"
)
_READ = "SELECT * FROM beneficiary WHERE id = $1"


def _plain(value: Any) -> Any:
    if isinstance(value, uuid.UUID | date | datetime):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    return value


def runtime_dsn() -> tuple[str, int]:
    """The runtime role's DSN (the service's own derivation) and its pool size."""
    settings = Settings()
    url = app_url(asyncpg_url(os.environ["DATABASE_URL"]), settings)
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    return dsn, settings.db_pool_size + settings.db_max_overflow


@asynccontextmanager
async def _pool(app: Starlette) -> AsyncIterator[None]:
    dsn, size = runtime_dsn()
    app.state.pool = await asyncpg.create_pool(dsn, min_size=size, max_size=size)
    try:
        yield
    finally:
        await app.state.pool.close()


async def _healthz(_request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def create_bare_app() -> Starlette:
    async def person(request: Request) -> Response:
        pool: asyncpg.Pool = request.app.state.pool
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(
                _SETTINGS,
                request.query_params["organisation"],
                request.query_params["principal"],
            )
            row = await conn.fetchrow(_READ, uuid.UUID(request.path_params["id"]))
        if row is None:
            return Response(status_code=404)
        body = json.dumps({k: _plain(v) for k, v in row.items()}, default=str)
        return Response(body, media_type="application/json")

    return Starlette(
        routes=[Route("/person/{id}", person), Route("/healthz", _healthz)], lifespan=_pool
    )


class _Person(BaseModel):
    """The record as a response model: its key fields typed, the other columns as read."""

    model_config = ConfigDict(extra="allow")

    id: uuid.UUID
    birth_name: str
    first_names: str
    birth_date: date


async def _transaction(request: Request) -> AsyncIterator[asyncpg.Connection]:
    pool: asyncpg.Pool = request.app.state.pool
    async with pool.acquire() as conn, conn.transaction():
        yield conn


Transaction = Annotated[asyncpg.Connection, Depends(_transaction, scope="function")]


def create_fastapi_app() -> FastAPI:
    app = FastAPI(lifespan=_pool, openapi_url=None, docs_url=None, redoc_url=None)

    @app.get("/person/{person_id}", response_model=_Person)
    async def person(
        person_id: uuid.UUID, organisation: uuid.UUID, principal: uuid.UUID, conn: Transaction
    ) -> Any:
        await conn.execute(_SETTINGS, str(organisation), str(principal))
        row = await conn.fetchrow(_READ, person_id)
        if row is None:
            return Response(status_code=404)
        return _Person(**{k: _plain(v) for k, v in row.items()})

    app.add_route("/healthz", _healthz)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bare", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument(
        "--framework",
        choices=("starlette", "fastapi"),
        default="starlette",
        help="starlette: the least around the work (default); fastapi: the framework's floor",
    )
    args = parser.parse_args()
    uvicorn.run(
        create_fastapi_app() if args.framework == "fastapi" else create_bare_app(),
        host=args.host,
        port=args.port,
        workers=1,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
