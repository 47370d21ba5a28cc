"""Back-pressure: beyond ``max_in_flight`` requests in progress, a worker answers 503 with
Retry-After at once; health endpoints are always answered."""

from __future__ import annotations

import asyncio
import re

import httpx
from fastapi import FastAPI
from sqlalchemy.engine import URL

from api.db.engine import Database
from api.main import create_app
from api.settings import Settings
from tests.api.test_http_conventions import assert_problem


async def test_requests_beyond_the_limit_get_an_immediate_503(
    settings: Settings, database_url: URL
) -> None:
    limited = settings.model_copy(update={"max_in_flight": 2})
    database = Database.connect(limited, owner=database_url)
    app: FastAPI = create_app(limited, database=database)
    release = asyncio.Event()

    @app.get("/test-held")
    async def held() -> None:
        await release.wait()

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            holders = [asyncio.create_task(client.get("/test-held")) for _ in range(2)]
            await asyncio.sleep(0.1)
            shed = await asyncio.wait_for(client.get("/v1/competences"), timeout=1)
            assert_problem(shed, 503, "service-unavailable")
            assert shed.headers["retry-after"] == "1"
            assert (await client.get("/healthz")).status_code == 200
            assert (await client.get("/readyz")).status_code == 200
            release.set()
            assert [(await h).status_code for h in holders] == [200, 200]
            assert (await client.get("/v1/competences")).status_code == 200
            shed_total = re.search(
                r"^guichet_http_requests_shed_total (\S+)$",
                (await client.get("/metrics")).text,
                re.MULTILINE,
            )
            assert shed_total and float(shed_total.group(1)) >= 1
    finally:
        await database.dispose()
