"""Operations endpoints (no auth): liveness, readiness, metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.metrics import REGISTRY
from api.problems import ServiceUnavailable
from api.schemas.common import Output

router = APIRouter(tags=["ops"])


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


@router.get("/metrics", response_class=Response)
async def metrics() -> Response:
    """Prometheus metrics."""
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
