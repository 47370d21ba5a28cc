"""FastAPI dependencies of authentication: every non-public route depends on
:func:`current_scope` (a test walks the routes to check it)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.security.utils import get_authorization_scheme_param
from pydantic import Field, TypeAdapter, ValidationError

from api.auth.builder import build_external_scope, build_scope
from api.auth.scope import Scope
from api.auth.tokens import peek_issuer, verify_access_token
from api.http.deps import Session
from api.problems import Unauthenticated

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="guichet"'}


@dataclass(frozen=True)
class ScopeHeader:
    """A request header :func:`current_scope` reads itself: the one declaration of its name,
    type and meaning, which the OpenAPI document lists on every operation that depends on
    the scope (api.http.openapi)."""

    name: str
    description: str
    adapter: TypeAdapter[Any]

    def read(self, request: Request) -> Any:
        """The header's value, ``None`` when absent; a 422 problem when it is invalid."""
        raw = request.headers.get(self.name)
        if raw is None:
            return None
        try:
            return self.adapter.validate_python(raw)
        except ValidationError as error:
            raise RequestValidationError(
                [{**e, "loc": ("header", self.name, *e["loc"])} for e in error.errors()]
            ) from None

    def openapi_parameter(self) -> dict[str, Any]:
        schema = {**self.adapter.json_schema(), "description": self.description}
        return {
            "name": self.name,
            "in": "header",
            "required": False,
            "schema": {**schema, "title": self.name},
            "description": self.description,
        }


ACTING_AGENT = ScopeHeader(
    "X-Acting-Agent",
    "API clients: the agent on whose behalf the client acts (recorded).",
    TypeAdapter(Annotated[str | None, Field(max_length=200)]),
)
EXTERNAL_ORGANISATION = ScopeHeader(
    "X-Organisation-Id",
    "External OIDC tokens only: the organisation the user acts for.",
    TypeAdapter(uuid.UUID | None),
)
SCOPE_HEADERS = (ACTING_AGENT, EXTERNAL_ORGANISATION)

#: the security scheme of every operation that depends on the scope (api.http.openapi)
BEARER_SCHEME_NAME = "HTTPBearer"
BEARER_SCHEME: dict[str, Any] = {
    "type": "http",
    "scheme": "bearer",
    "description": "Access token from POST /v1/auth/token.",
}


def _bearer_token(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer …`` header, read as FastAPI's ``HTTPBearer``
    reads it (any other scheme, or none, is no token)."""
    authorization = request.headers.get("Authorization")
    scheme, credentials = get_authorization_scheme_param(authorization)
    if not (scheme and credentials) or scheme.lower() != "bearer":
        return None
    return credentials


async def current_scope(request: Request, session: Session) -> Scope:
    """The request's scope, from its bearer token and the headers of :data:`SCOPE_HEADERS`.

    One dependency reading its headers itself: declared as parameters (a bearer scheme and
    two headers), FastAPI solved and validated each as a dependency of its own at every
    request on every scoped route (~150 of the ~1,150 Python calls of ``GET /v1/me``)."""
    acting_agent = ACTING_AGENT.read(request)
    external_organisation = EXTERNAL_ORGANISATION.read(request)
    token = _bearer_token(request)
    if token is None:
        raise Unauthenticated(detail="A bearer access token is required.", headers=_CHALLENGE)
    request_id = getattr(request.state, "request_id", None)
    try:
        issuers = request.app.state.external_issuers
        # decoding the token's claims only to pick an issuer costs ~5 % of a cached-scope
        # request: skipped when no external issuer is configured
        external = issuers.get(peek_issuer(token)) if issuers else None
        if external is not None:
            email = await external.verify(token)
            return await build_external_scope(
                session, email, external_organisation, request_id=request_id
            )
        claims = verify_access_token(request.app.state.keyring, request.app.state.settings, token)
        return await build_scope(session, claims, request_id=request_id, acting_agent=acting_agent)
    except Unauthenticated as error:
        error.headers.update(
            {
                **_CHALLENGE,
                "WWW-Authenticate": _CHALLENGE["WWW-Authenticate"] + ', error="invalid_token"',
            }
        )
        raise


CurrentScope = Annotated[Scope, Depends(current_scope)]
