"""Tokens (OAuth 2.0), public keys, and who the caller is."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Request, status
from fastapi.responses import JSONResponse

from api.auth.deps import CurrentScope
from api.auth.service import OAuthError, TokenRequest, TokenService
from api.domain.organisations.deps import Organisations
from api.domain.organisations.schemas import MeRead
from api.domain.staff.deps import StaffContext
from api.domain.staff.schemas import InvitationRead
from api.http.deps import Session, TransactionRoute
from api.http.schemas import Output
from api.problems import TooManyRequests

router = APIRouter(tags=["auth"], route_class=TransactionRoute)

_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class TokenResponse(Output):
    access_token: str
    token_type: str
    expires_in: int
    refresh_token: str | None = None
    scope: str | None = None


class OAuthErrorResponse(Output):
    error: str
    error_description: str | None = None


@router.post(
    "/v1/auth/token",
    response_model=TokenResponse,
    response_model_exclude_none=True,
    responses={
        400: {"model": OAuthErrorResponse, "description": "OAuth 2.0 error (RFC 6749 §5.2)"},
        401: {"model": OAuthErrorResponse, "description": "Unknown client or wrong secret"},
        429: {"model": OAuthErrorResponse, "description": "Too many attempts; see Retry-After"},
    },
)
async def token(
    request: Request,
    session: Session,
    # Documented as an enum; any other value is still answered `unsupported_grant_type`
    # (RFC 6749 §5.2), not a validation problem.
    grant_type: Annotated[
        str,
        Form(
            max_length=40,
            json_schema_extra={"enum": ["password", "client_credentials", "refresh_token"]},
        ),
    ],
    username: Annotated[str | None, Form(max_length=320)] = None,
    password: Annotated[str | None, Form(max_length=200)] = None,
    organisation_id: Annotated[str | None, Form(max_length=36)] = None,
    client_id: Annotated[str | None, Form(max_length=64)] = None,
    client_secret: Annotated[str | None, Form(max_length=200)] = None,
    refresh_token: Annotated[str | None, Form(max_length=200)] = None,
    scope: Annotated[str | None, Form(max_length=500)] = None,
) -> Any:
    """Exchange credentials or a refresh token for an access token."""
    service = TokenService(
        session, request.app.state.keyring, request.app.state.settings, request.app.state.throttle
    )
    grant = TokenRequest(
        grant_type=grant_type,
        username=username,
        password=password,
        organisation_id=organisation_id,
        client_id=client_id,
        client_secret=client_secret,
        refresh_token=refresh_token,
        scope=scope,
    )
    client_ip = request.client.host if request.client else "unknown"
    try:
        body = await service.grant(grant, client_ip)
    except OAuthError as error:
        # Returned, not raised: what the grant wrote (a revoked token family) must commit.
        return JSONResponse(error.body(), status_code=error.status, headers=_NO_STORE)
    except TooManyRequests as error:
        return JSONResponse(
            {"error": "too_many_requests", "error_description": error.detail},
            status_code=429,
            headers={**_NO_STORE, **error.headers},
        )
    return JSONResponse(TokenResponse(**body).model_dump(exclude_none=True), headers=_NO_STORE)


class Jwks(Output):
    keys: list[dict[str, str]]


@router.get("/.well-known/jwks.json", response_model=Jwks)
async def jwks(request: Request) -> Jwks:
    """Public keys that verify this service's access tokens."""
    return Jwks.model_validate(request.app.state.keyring.jwks())


@router.get("/v1/me", response_model=MeRead, response_model_exclude_none=True)
async def me(scope: CurrentScope, session: Session) -> MeRead:
    """Who the caller is, for which organisation, with which roles or scopes."""
    return await Organisations(scope, session).whoami()


@router.get("/v1/me/invitations", response_model=list[InvitationRead])
async def my_invitations(staff: StaffContext) -> list[InvitationRead]:
    """Memberships other organisations offer the signed-in user, until accepted or declined."""
    return await staff.invitations()


@router.post(
    "/v1/me/invitations/{organisation_id}/{answer}", status_code=status.HTTP_204_NO_CONTENT
)
async def answer_invitation(
    staff: StaffContext, organisation_id: uuid.UUID, answer: Literal["accept", "decline"]
) -> None:
    """Accept (then sign in naming that organisation) or decline a membership offered."""
    await staff.answer_invitation(organisation_id, accept=answer == "accept")
