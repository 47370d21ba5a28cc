"""FastAPI dependencies of authentication: every non-public route depends on
:func:`current_scope` (a test walks the routes to check it)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.auth.builder import build_external_scope, build_scope
from api.auth.scope import Scope
from api.auth.tokens import peek_issuer, verify_access_token
from api.http.deps import Session
from api.problems import Unauthenticated

_bearer = HTTPBearer(auto_error=False, description="Access token from POST /v1/auth/token.")

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="guichet"'}


async def current_scope(
    request: Request,
    session: Session,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    acting_agent: Annotated[
        str | None,
        Header(
            alias="X-Acting-Agent",
            max_length=200,
            description="API clients: the agent on whose behalf the client acts (recorded).",
        ),
    ] = None,
    external_organisation: Annotated[
        uuid.UUID | None,
        Header(
            alias="X-Organisation-Id",
            description="External OIDC tokens only: the organisation the user acts for.",
        ),
    ] = None,
) -> Scope:
    if credentials is None:
        raise Unauthenticated(detail="A bearer access token is required.", headers=_CHALLENGE)
    token = credentials.credentials
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
