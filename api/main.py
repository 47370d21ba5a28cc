"""Application factory: lifespan (database, migrations), middleware, routers, errors."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi import APIRouter, Depends, FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.telemetry import TelemetryConfig

from api.auth.bootstrap import bootstrap_platform_admin
from api.auth.keys import KeyRing
from api.auth.throttle import LoginLimits, LoginThrottle
from api.auth.tokens import ExternalIssuer, ExternalIssuerVerifier
from api.db.engine import Database, pool_status
from api.db.migrate import head_revision, migrate
from api.domain.people.nir import NirCipher
from api.http import metrics
from api.http.deps import TransactionRoute, check_request_input
from api.http.docs import install_docs
from api.http.errors import install_error_handlers
from api.http.idempotency import install_idempotency
from api.http.middleware import InFlightLimit, RequestContextMiddleware
from api.http.openapi import install_openapi
from api.logging import configure_logging
from api.routers import (
    access_requests,
    aid_commissions,
    aid_envelopes,
    aid_payments,
    aid_requests,
    aid_rules,
    audit,
    auth,
    changes,
    conventions,
    directory,
    dossiers,
    ops,
    organisations,
    orientations,
    people,
    referrals,
    statistics,
    sync,
    territories,
    webhooks,
)
from api.settings import Settings, get_settings

ROUTERS = (
    ops.router,
    territories.router,
    directory.router,
    auth.router,
    organisations.router,
    conventions.router,
    people.router,
    access_requests.router,
    referrals.router,
    orientations.router,
    dossiers.router,
    aid_rules.router,
    aid_requests.router,
    aid_payments.router,
    aid_envelopes.router,
    aid_commissions.router,
    sync.router,
    changes.router,
    webhooks.router,
    audit.router,
    statistics.router,
)

API_DESCRIPTION = (
    "Shared back office of a multi-partner guichet unique for French local social action. "
    "Each partner sees only what its competences, held by law or delegated by convention, "
    "entitle it to. Errors are RFC 9457 problems (see openapi/problems.md)."
)


#: FastAPI's native OpenTelemetry: no traces, metrics, logs or operation spans
TELEMETRY_OFF: TelemetryConfig = {
    "tracing": False,
    "metrics": False,
    "logs": False,
    "operation_spans": False,
    "auto_configure": False,
}


def create_app(settings: Settings | None = None, database: Database | None = None) -> FastAPI:
    """Build the app. Tests pass their own ``database`` (bound to a rolled-back transaction);
    otherwise the lifespan connects, migrates when asked, and disconnects."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if database is not None:
            yield
            return
        db = Database.connect(settings)
        if settings.auto_migrate:
            await migrate(settings, db.owner_url)
        await bootstrap_platform_admin(settings, db.owner_url)
        _attach(app, db)
        build_what_the_first_request_would(app)
        _spare_startup_objects_from_collection()
        try:
            yield
        finally:
            await db.dispose()

    app = FastAPI(
        title="Guichet unique",
        version="1.0.0",
        description=API_DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served offline by install_docs
        redoc_url=None,
        dependencies=[Depends(check_request_input)],
        # The service exports its own metrics (/metrics) and access log. FastAPI's native
        # OpenTelemetry, on by default, asked the global providers at every request whether
        # one was configured, and wrapped each endpoint in an operation span when one was.
        telemetry=TELEMETRY_OFF,
    )
    # routes added to the application itself (documentation, problem pages) end their
    # session as the routers' do
    app.router.route_class = TransactionRoute
    app.state.settings = settings
    app.state.keyring = KeyRing.load_or_create(settings.keys_dir)
    app.state.nir_cipher = NirCipher.from_settings(settings)
    app.state.throttle = LoginThrottle(
        lambda: app.state.db.app_engine,
        app.state.nir_cipher.derived_key("login-throttle"),
        LoginLimits(
            max_account_failures=settings.login_max_account_failures,
            max_ip_attempts=settings.login_max_ip_attempts,
        ),
    )
    app.state.external_issuers = {
        i.issuer: ExternalIssuerVerifier(ExternalIssuer(i.issuer, i.jwks_url, i.audience))
        for i in settings.oidc_issuers
    }
    app.state.expected_revision = head_revision()
    # added first, so it runs inside the request context (request id, access log, metrics)
    app.add_middleware(InFlightLimit, limit=settings.max_in_flight)
    app.add_middleware(RequestContextMiddleware, max_body_bytes=settings.max_body_bytes)
    install_error_handlers(app)
    install_idempotency(app)
    install_openapi(app)
    install_docs(app)
    for router in ROUTERS:
        _require_transaction_routes(router)
        app.include_router(router)
    app.state.route_methods = [
        (route.path_regex, route.methods or set())
        for router in ROUTERS
        for route in router.routes
        if isinstance(route, APIRoute)
    ]
    if database is not None:
        _attach(app, database)
    return app


def _require_transaction_routes(router: APIRouter) -> None:
    """Refuse to start with an endpoint whose session nothing would end (a router created
    without ``route_class=TransactionRoute``)."""
    for route in router.routes:
        if isinstance(route, APIRoute) and not isinstance(route, TransactionRoute):
            raise RuntimeError(f"{route.path}: its router's route_class is not TransactionRoute")


#: allocations (net of those freed) between two young-generation collections; Python's
#: default, 700, collects dozens of times a second under load though a request's objects are
#: freed by reference counting as it ends
YOUNG_COLLECTION_THRESHOLD = 10_000


def build_what_the_first_request_would(app: FastAPI) -> None:
    """Build at start-up what a worker's first request otherwise builds while its client
    waits (~0.2 s of its latency, sampled with py-spy), and let the freeze that follows keep
    it out of the collector's reach:

    * FastAPI resolves an included router's routes (their dependants and parameter fields)
      the first time a request is matched against them; walking the route contexts builds
      the same objects, kept on the included routers requests are matched against;
    * anyio loads its asyncio backend at its first use in the running loop (a dependency
      or endpoint run in the thread pool, a streamed answer): ~35 ms of imports from
      compiled bytecode."""
    for _ in iter_route_contexts(app.router.routes):
        pass
    anyio.get_cancelled_exc_class()


def _spare_startup_objects_from_collection() -> None:
    """The ~300,000 objects built at start-up (routes, models, schemas, metadata) live as
    long as the process: moved out of the collector's reach, a full collection no longer
    walks them (measured under load: 0.36 s per full collection before, stalling every
    request; ~10 ms after). Cycles among them that become garbage later are not freed, a
    bounded cost for objects meant to live for ever."""
    gc.collect()
    gc.freeze()
    _young, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, older, oldest)


def _attach(app: FastAPI, db: Database) -> None:
    app.state.db = db
    app.state.sessionmaker = db.sessionmaker
    metrics.POOL.read_pool = lambda: pool_status(db.app_engine)


def _default_app() -> FastAPI:
    configure_logging(get_settings().log_level)
    return create_app()


# `uvicorn api.main:app` works; `guichet serve` is the documented way.
app = _default_app()
