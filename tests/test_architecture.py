"""Structural guarantees: the access mechanism cannot be forgotten."""

from __future__ import annotations

import ast
from pathlib import Path

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from api.auth.deps import current_scope
from api.http.idempotency import idempotency
from api.main import ROUTERS

ROOT = Path(__file__).resolve().parent.parent

# Routes that hold no personal or partner-private data (api.md: public reference reads).
PUBLIC_ROUTES = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/.well-known/jwks.json"),
    ("POST", "/v1/auth/token"),
    ("GET", "/v1/territories/communes"),
    ("GET", "/v1/territories/communes/{code}"),
    ("GET", "/v1/territories/epci/{siren}"),
    ("GET", "/v1/territories/departements/{code}"),
    ("GET", "/v1/competences"),
    ("GET", "/v1/directory/competent"),
    ("GET", "/v1/organisations"),
    ("GET", "/v1/organisations/{organisation_id}"),
    # règlements are administrative documents; the comparison takes no personal data
    ("GET", "/v1/aid-rules"),
    ("GET", "/v1/aid-rules/{rules_id:uuid}"),
    ("POST", "/v1/aid-rules/compare"),
}


def _depends_on_scope(dependant: Dependant) -> bool:
    return any(d.call is current_scope or _depends_on_scope(d) for d in dependant.dependencies)


def test_every_non_public_route_depends_on_the_scope() -> None:
    seen = set()
    for route in (r for router in ROUTERS for r in router.routes):
        assert isinstance(route, APIRoute)
        for method in route.methods:
            key = (method, route.path)
            seen.add(key)
            if key not in PUBLIC_ROUTES:
                assert _depends_on_scope(route.dependant), f"{method} {route.path} has no scope"
    assert seen >= PUBLIC_ROUTES, "a public route listed here no longer exists"


def _depends_on_idempotency(dependant: Dependant) -> bool:
    return any(d.call is idempotency or _depends_on_idempotency(d) for d in dependant.dependencies)


def test_every_creating_post_takes_an_idempotency_key() -> None:
    creating = [
        route
        for router in ROUTERS
        for route in router.routes
        if isinstance(route, APIRoute) and "POST" in route.methods and route.status_code == 201
    ]
    assert creating, "no creating route found"
    missing = [r.path for r in creating if not _depends_on_idempotency(r.dependant)]
    assert missing == [], "creating POST routes without api.http.idempotency.Idempotent"


# Import rules (routers, rules, repositories, the JWT library) are import-linter contracts:
# pyproject.toml [tool.importlinter], run by tests/test_layers.py.


def test_only_the_auth_package_builds_a_scope() -> None:
    builders = set()
    for path in (ROOT / "api").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Scope":
                builders.add(path.relative_to(ROOT).as_posix())
    assert builders <= {"api/auth/builder.py"}
