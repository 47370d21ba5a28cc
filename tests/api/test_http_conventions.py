"""Problems everywhere, request ids, body limit, ops endpoints, logs without personal data."""

from __future__ import annotations

import logging
import uuid

import httpx
import pytest
from fastapi import APIRouter, FastAPI, routing
from sqlalchemy import text
from sqlalchemy.engine import make_url

from api import main
from api.db.engine import Database
from api.http.deps import Session
from api.main import build_what_the_first_request_would, create_app
from api.settings import Settings


def assert_problem(r: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body: dict[str, object] = r.json()
    assert body["type"] == f"/problems/{code}"
    assert body["code"] == code
    assert body["status"] == status
    assert body["request_id"] == r.headers["x-request-id"]
    return body


async def test_unknown_route_is_a_404_problem(client: httpx.AsyncClient) -> None:
    body = assert_problem(await client.get("/v1/nothing-here"), 404, "not-found")
    assert body["instance"] == "/v1/nothing-here"


async def test_wrong_method_is_a_405_problem(client: httpx.AsyncClient) -> None:
    r = await client.delete("/v1/competences")
    assert_problem(r, 405, "method-not-allowed")
    assert "GET" in r.headers["allow"]


async def test_declared_oversized_body_is_413(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/competences", content=b"x" * (2 * 1024 * 1024))
    assert_problem(r, 413, "payload-too-large")


async def test_streamed_oversized_body_without_length_is_413(client: httpx.AsyncClient) -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(40):
            yield b"y" * 65536

    # a public endpoint that reads its (form) body: the stream is cut at the limit
    r = await client.post(
        "/v1/auth/token",
        content=chunks(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_problem(r, 413, "payload-too-large")


async def test_request_id_is_echoed_or_generated(client: httpx.AsyncClient) -> None:
    r = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    generated = (await client.get("/healthz")).headers["x-request-id"]
    assert uuid.UUID(generated)
    unsafe = (await client.get("/healthz", headers={"X-Request-ID": "a b\tc" * 50})).headers
    assert unsafe["x-request-id"] != "a b\tc" * 50


async def test_unexpected_error_is_a_500_without_internals(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("SELECT secret FROM beneficiary -- internals")

    body = assert_problem(await client.get("/boom"), 500, "internal-error")
    assert "SELECT" not in str(body) and "Traceback" not in str(body)


async def test_logs_carry_no_body_and_no_query_string(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    marker = "Dupont-Marchand-" + uuid.uuid4().hex
    with caplog.at_level(logging.DEBUG):
        await client.post("/v1/competences", json={"name": marker})
        await client.get("/v1/territories/communes", params={"q": marker})
    logged = "\n".join(f"{r.getMessage()} {vars(r)}" for r in caplog.records if r.name != "httpx")
    assert "request" in logged  # the access log did run
    assert marker not in logged


async def test_health_ready_and_metrics(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    assert (await client.get("/readyz")).json() == {"status": "ready"}
    await client.get("/v1/territories/communes/59350")
    text = (await client.get("/metrics")).text
    assert 'route="/v1/territories/communes/{code}"' in text
    assert "guichet_http_request_duration_seconds_bucket" in text
    assert "guichet_db_pool_" in text


async def test_readyz_is_503_when_the_database_is_unreachable(settings: Settings) -> None:
    unreachable = make_url("postgresql+asyncpg://nobody@127.0.0.1:1/nowhere")
    database = Database.connect(settings, owner=unreachable)
    app = create_app(settings, database=database)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        assert_problem(await c.get("/readyz"), 503, "service-unavailable")
        assert (await c.get("/healthz")).status_code == 200
    await database.dispose()


async def test_a_started_worker_resolves_no_route_at_its_first_request(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FastAPI resolves an included router's routes at the first request matched against
    them, unless start-up did (its worker's first request waited ~0.2 s for it)."""
    database = Database.connect(
        settings, owner=make_url("postgresql+asyncpg://nobody@127.0.0.1:1/x")
    )
    app = create_app(settings, database=database)
    build_what_the_first_request_would(app)

    def resolved_at_a_request(*args: object, **kwargs: object) -> None:
        raise AssertionError("a route was resolved while a request waited")

    monkeypatch.setattr(routing._EffectiveRouteContext, "from_api_route", resolved_at_a_request)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        assert_problem(await c.get("/v1/referrals?box=inbox"), 401, "unauthenticated")
        assert_problem(await c.get("/v1/me"), 401, "unauthenticated")
    await database.dispose()


def test_a_router_whose_routes_would_not_end_their_session_is_refused_at_start_up(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A router created without ``route_class=TransactionRoute``: nothing would commit its
    endpoints' sessions nor give their connections back, so the service does not start."""
    forgotten = APIRouter(prefix="/v1/forgotten")

    @forgotten.get("/thing")
    async def thing(session: Session) -> None:
        await session.execute(text("SELECT 1"))

    monkeypatch.setattr(main, "ROUTERS", (*main.ROUTERS, forgotten))
    with pytest.raises(RuntimeError, match="/v1/forgotten/thing"):
        create_app(settings)


async def test_an_endpoint_commits_before_answering_and_rolls_back_when_it_fails(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """The session of a route added to the application itself is ended by the route
    (api.http.deps.TransactionRoute), as the routers' are. Here each request is a savepoint
    of the test's connection, and a setting changed in it lasts only if it is committed."""

    @app.get("/test-transaction")
    async def transaction(session: Session, value: str, fail: bool = False) -> str | None:
        seen = await session.scalar(text("SELECT current_setting('guichet.probe', true)"))
        await session.execute(text("SELECT set_config('guichet.probe', :v, false)"), {"v": value})
        if fail:
            raise RuntimeError("after a statement")
        return seen

    await client.get("/test-transaction", params={"value": "committed"})
    failed = await client.get("/test-transaction", params={"value": "lost", "fail": True})
    assert_problem(failed, 500, "internal-error")
    again = await client.get("/test-transaction", params={"value": "committed"})
    assert again.json() == "committed"


async def test_readyz_is_503_when_the_schema_is_behind(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    app.state.expected_revision = "a-revision-not-applied-yet"
    assert_problem(await client.get("/readyz"), 503, "service-unavailable")


async def test_unknown_query_parameter_is_422(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/territories/communes", params={"comune": "80021"})
    body = assert_problem(r, 422, "validation-error")
    assert body["errors"] == [{"pointer": "/comune", "detail": "Unknown parameter.", "in": "query"}]
