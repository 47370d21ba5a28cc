"""The OpenAPI document: FastAPI's, with every error documented as an RFC 9457 problem.

``guichet openapi`` writes it to ``openapi/openapi.json``; a test fails when that file
drifts from the app.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

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
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Problem"] = _PROBLEM_SCHEMA
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
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
    if schemes:
        schemes[_LOGIN_FLOW] = _LOGIN_FLOW_SCHEME
    return schema


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
