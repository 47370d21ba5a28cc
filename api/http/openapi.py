"""The OpenAPI document: FastAPI's, with every error documented as an RFC 9457 problem.

``guichet openapi`` writes it to ``openapi/openapi.json``; a test fails when that file
drifts from the app.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, iter_route_contexts

from api.auth.deps import BEARER_SCHEME, BEARER_SCHEME_NAME, SCOPE_HEADERS, current_scope
from api.problems import PROBLEM_MEDIA_TYPE

OPENAPI_PATH = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"

_PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Problem",
    "description": "RFC 9457 problem details; `code` is the slug of `type`.",
    "required": ["type", "title", "status", "code"],
    "properties": {
        "type": {"type": "string", "examples": ["/problems/not-found"]},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "code": {"type": "string"},
        "request_id": {"type": ["string", "null"]},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["pointer", "detail"],
                "properties": {
                    "pointer": {"type": "string"},
                    "detail": {"type": "string"},
                    "in": {"type": "string", "enum": ["body", "query", "path", "header", "cookie"]},
                },
            },
        },
    },
}

_LOGIN_FLOW = "OAuth2Password"
_LOGIN_FLOW_SCHEME: dict[str, Any] = {
    "type": "oauth2",
    "description": "A user's e-mail and password exchanged for an access token "
    "(users with several organisations pass `organisation_id` to the token endpoint).",
    "flows": {"password": {"tokenUrl": "/v1/auth/token", "scopes": {}}},
}

_PROBLEM_RESPONSE = {
    "description": "Problem (RFC 9457); see openapi/problems.md for the slugs.",
    "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
}


def build_openapi(app: FastAPI) -> dict[str, Any]:
    schema = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
    )
    scoped = _scoped_operations(app)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Problem"] = _PROBLEM_SCHEMA
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    for path, path_item in schema.get("paths", {}).items():
        for method, operation in path_item.items():
            position = scoped.get((method.upper(), path))
            if position is not None:
                _document_scope(operation, position)
            responses = operation.setdefault("responses", {})
            for status, response in list(responses.items()):
                if status[0] in "45" and _is_default_error(response):
                    responses[status] = {
                        **_PROBLEM_RESPONSE,
                        "description": response.get("description", "Problem"),
                    }
            responses["default"] = _PROBLEM_RESPONSE
            _offer_password_flow(operation)
    schemes = schema["components"].setdefault("securitySchemes", {})
    if scoped:
        schemes[BEARER_SCHEME_NAME] = BEARER_SCHEME
    if schemes:
        schemes[_LOGIN_FLOW] = _LOGIN_FLOW_SCHEME
    return schema


def _scoped_operations(app: FastAPI) -> dict[tuple[str, str], int]:
    """The operations whose route depends on :func:`current_scope`, each with the place of
    the scope's headers among the operation's own: ``current_scope`` reads its token and
    headers itself (api.auth.deps), so FastAPI does not see them to document them."""
    scoped = {}
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if not isinstance(route, APIRoute) or not route.include_in_schema:
            continue
        position = _headers_before_scope(route.dependant)
        if position is not None:
            path = getattr(context, "path_format", route.path_format)
            scoped.update({(method, path): position for method in route.methods or ()})
    return scoped


def _headers_before_scope(dependant: Dependant) -> int | None:
    """How many documented header parameters FastAPI lists before the scope's: it walks the
    dependencies depth first, each once, a dependant's own parameters before those of its
    dependencies. ``None`` when the scope is not among the dependencies."""
    count = 0
    visited: set[object] = set()

    def walk(current: Dependant) -> bool:
        nonlocal count
        count += sum(
            getattr(f.field_info, "include_in_schema", True) for f in current.header_params
        )
        for sub in current.dependencies:
            if sub.call is current_scope:
                return True
            if sub.call not in visited:
                visited.add(sub.call)
                if walk(sub):
                    return True
        return False

    return count if walk(dependant) else None


def _document_scope(operation: dict[str, Any], position: int) -> None:
    """What FastAPI documented when ``current_scope`` declared them as parameters: the
    bearer scheme, the scope's headers in their place, and a 422 for their validation."""
    parameters = operation.setdefault("parameters", [])
    first = next(
        (i for i, p in enumerate(parameters) if p["in"] in ("header", "cookie")), len(parameters)
    )
    at = first + position
    parameters[at:at] = [header.openapi_parameter() for header in SCOPE_HEADERS]
    operation["security"] = [*operation.get("security", []), {BEARER_SCHEME_NAME: []}]
    responses = operation.setdefault("responses", {})
    if not {"422", "4XX", "default"} & responses.keys():
        responses["422"] = {"description": "Validation Error"}


def _offer_password_flow(operation: dict[str, Any]) -> None:
    """A bearer-protected operation also lists the OAuth2 password flow (the same access
    token, obtained from the token endpoint): Swagger UI's Authorize dialog then asks for a
    login and password and fetches the token itself."""
    security = operation.get("security")
    if security and {_LOGIN_FLOW: []} not in security:
        operation["security"] = [*security, {_LOGIN_FLOW: []}]


def _is_default_error(response: dict[str, Any]) -> bool:
    """No declared body, or FastAPI's own validation error model: ours is a problem."""
    content = response.get("content")
    if not content:
        return True
    schema = content.get("application/json", {}).get("schema", {})
    return str(schema.get("$ref", "")).endswith("/HTTPValidationError")


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def render(app: FastAPI) -> str:
    return json.dumps(app.openapi(), indent=2, ensure_ascii=False, sort_keys=True) + "\n"
