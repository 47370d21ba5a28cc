"""Database faults answer 503 with Retry-After, never 500, and the service recovers by itself:
a statement past the timeout, an exhausted pool, connections killed under load (nothing lost
or duplicated when clients retry with their Idempotency-Key)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from api.auth.keys import KeyRing
from api.db.engine import Database, owner_connection
from api.http.deps import Session
from api.main import create_app
from api.settings import Settings
from tests.api.people_support import person
from tests.api.test_http_conventions import assert_problem
from tests.world import World


def _with_slow_route(app: FastAPI) -> FastAPI:
    @app.get("/test-slow")
    async def slow(session: Session, seconds: float = 1.0) -> None:
        await session.execute(text("SELECT pg_sleep(:s)"), {"s": seconds})

    return app


@asynccontextmanager
async def service(settings: Settings, database_url: URL) -> AsyncIterator[httpx.AsyncClient]:
    """The app on its own pool of the runtime role (requests commit for real)."""
    database = Database.connect(settings, owner=database_url)
    app = _with_slow_route(create_app(settings, database=database))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://t", timeout=30) as c:
            yield c
    finally:
        await database.dispose()


def assert_unavailable(response: httpx.Response) -> None:
    assert_problem(response, 503, "service-unavailable")
    assert int(response.headers["retry-after"]) >= 1


async def test_a_statement_past_the_timeout_answers_503_and_the_next_request_works(
    settings: Settings, database_url: URL
) -> None:
    quick = settings.model_copy(update={"db_statement_timeout_ms": 200})
    async with service(quick, database_url) as client:
        assert_unavailable(await client.get("/test-slow", params={"seconds": 2}))
        assert (await client.get("/v1/territories/communes/80021")).status_code == 200


async def test_an_exhausted_pool_answers_503_quickly(settings: Settings, database_url: URL) -> None:
    tiny = settings.model_copy(
        update={"db_pool_size": 1, "db_max_overflow": 0, "db_pool_timeout_seconds": 0.3}
    )
    async with service(tiny, database_url) as client:
        holding = asyncio.create_task(client.get("/test-slow", params={"seconds": 1.5}))
        await asyncio.sleep(0.3)
        started = asyncio.get_running_loop().time()
        assert_unavailable(await client.get("/v1/territories/communes/80021"))
        assert asyncio.get_running_loop().time() - started < 1.0
        assert (await holding).status_code == 200
        assert (await client.get("/v1/territories/communes/80021")).status_code == 200


async def _terminate_runtime_connections(database_url: URL, role: str) -> int:
    async with owner_connection(database_url) as conn:
        killed = await conn.scalar(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND usename = :role"
            ),
            {"role": role},
        )
    return int(killed or 0)


@pytest.fixture
async def killing_allowed(app_engine: AsyncEngine) -> AsyncIterator[None]:
    """The kills reach every runtime-role connection of the database, the shared test pool's
    idle ones included: discard them afterwards, as the service's own pool does."""
    yield
    await app_engine.dispose()


async def test_connections_killed_under_load_answer_503_and_retries_lose_nothing(
    settings: Settings, database_url: URL, world: World, killing_allowed: None
) -> None:
    # a token minted directly: this test holds no connection of the shared pool
    token = world.token(KeyRing.load_or_create(settings.keys_dir), settings, "ccas_rsa_agent")
    headers = {"Authorization": f"Bearer {token}"}
    marker = uuid.uuid4().hex[:8]
    bodies = {
        str(uuid.uuid4()): person(
            birth_name=f"Coupure{marker}{i:03d}",
            first_names="Jeanne",
            birth_date=(date(1940, 1, 1) + timedelta(days=211 * i)).isoformat(),
        )
        for i in range(60)
    }

    async def create(client: httpx.AsyncClient, key: str, delay: float = 0) -> httpx.Response:
        await asyncio.sleep(delay)  # a steady stream rather than one burst
        return await client.post(
            "/v1/beneficiaries", json=bodies[key], headers={**headers, "Idempotency-Key": key}
        )

    async def kill_repeatedly() -> int:
        killed = 0
        for _ in range(4):
            await asyncio.sleep(0.15)
            killed += await _terminate_runtime_connections(database_url, settings.app_role)
        return killed

    async with service(settings, database_url) as client:
        killer = asyncio.create_task(kill_repeatedly())
        first = await asyncio.gather(
            *(create(client, key, delay=i * 0.015) for i, key in enumerate(bodies))
        )
        assert await killer > 0
        statuses = {r.status_code for r in first}
        assert 503 in statuses  # the kills did hit requests
        assert statuses <= {201, 503}, [r.text for r in first if r.status_code not in (201, 503)]
        for response in first:
            if response.status_code == 503:
                assert_unavailable(response)
        # clients retry what answered 503, with the same key; replays answer the first result
        ids = {}
        for key, response in zip(bodies, first, strict=True):
            while response.status_code == 503:
                await asyncio.sleep(0.05)
                response = await create(client, key)
            assert response.status_code == 201, response.text
            ids[key] = response.json()["id"]

    assert len(set(ids.values())) == len(bodies)
    async with owner_connection(database_url) as conn:
        stored = await conn.scalar(
            text("SELECT count(*) FROM beneficiary WHERE birth_name LIKE :m"),
            {"m": f"Coupure{marker}%"},
        )
    assert stored == len(bodies)
