"""Operations endpoints (no auth): liveness, readiness, metrics."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.http.deps import TransactionRoute
from api.http.metrics import REGISTRY
from api.http.schemas import Output
from api.problems import NotFound, ServiceUnavailable

router = APIRouter(tags=["ops"], route_class=TransactionRoute)


class Health(Output):
    status: str


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """The process is up."""
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Health,
    responses={503: {"description": "Database unreachable or not migrated."}},
)
async def readyz(request: Request) -> Health:
    """The database is reachable and migrated to the version this code expects."""
    if not await request.app.state.db.is_ready(request.app.state.expected_revision):
        raise ServiceUnavailable(detail="The database is unreachable or not migrated.")
    return Health(status="ready")


_LOOPBACK = frozenset({"127.0.0.1", "::1"})


@router.get(
    "/metrics",
    response_class=Response,
    responses={404: {"description": "Not readable by this caller (token or loopback)."}},
)
async def metrics(request: Request) -> Response:
    """Prometheus metrics (with the metrics token, or from the loopback when none is set)."""
    expected = request.app.state.settings.metrics_token
    if expected is not None:
        supplied = request.headers.get("authorization", "")
        allowed = hmac.compare_digest(
            supplied.encode(), f"Bearer {expected.get_secret_value()}".encode()
        )
    else:
        allowed = request.client is not None and request.client.host in _LOOPBACK
    if not allowed:
        # answered like an unknown path: the metrics' existence is nobody else's business
        raise NotFound(detail="No resource at this address.")
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
