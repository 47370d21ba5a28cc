"""The OAuth 2.0 token endpoint (RFC 6749): password, client_credentials, refresh_token.

Unknown account and wrong password answer the same thing after the same work (argon2 on a
dummy hash). Refresh tokens rotate: each use spends the token and issues the next one of its
family; presenting a spent token revokes the whole family (RFC 6819 §5.2.2.3, reuse
detection), and a refresh only succeeds while the membership still exists.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from api.auth.keys import KeyRing
from api.auth.passwords import (
    hashing_slot,
    verify_client_secret_off_loop,
    verify_password_off_loop,
)
from api.auth.principals import PrincipalStore
from api.auth.throttle import LoginThrottle
from api.auth.tokens import hash_secret, issue_access_token, new_refresh_token
from api.db.context import DbContext, set_db_context
from api.domain import clock
from api.settings import Settings


@dataclass
class OAuthError(Exception):
    error: str
    description: str
    status: int = 400
    extra: dict[str, Any] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        return {"error": self.error, "error_description": self.description, **self.extra}


@dataclass(frozen=True)
class TokenRequest:
    grant_type: str
    username: str | None = None
    password: str | None = None
    organisation_id: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    refresh_token: str | None = None
    scope: str | None = None


def _bad_credentials() -> OAuthError:
    return OAuthError("invalid_grant", "Wrong e-mail or password.")


class TokenService:
    def __init__(
        self, session: AsyncSession, keyring: KeyRing, settings: Settings, throttle: LoginThrottle
    ) -> None:
        self.session = session
        self.keyring = keyring
        self.settings = settings
        self.throttle = throttle
        self.store = PrincipalStore(session)

    async def grant(self, request: TokenRequest, client_ip: str) -> dict[str, Any]:
        if request.grant_type == "password":
            return await self._password(request, client_ip)
        if request.grant_type == "client_credentials":
            return await self._client_credentials(request, client_ip)
        if request.grant_type == "refresh_token":
            await set_db_context(self.session, context=DbContext.AUTH)
            return await self._refresh(request)
        raise OAuthError(
            "unsupported_grant_type", "Use password, client_credentials or refresh_token."
        )

    async def _password(self, request: TokenRequest, client_ip: str) -> dict[str, Any]:
        if not request.username or request.password is None:
            raise OAuthError("invalid_request", "username and password are required.")
        account = "user:" + request.username.strip().lower()
        admission = await self.throttle.check(account, client_ip)
        async with hashing_slot():  # before the transaction: a queued login holds no connection
            await set_db_context(self.session, context=DbContext.AUTH)
            user = await self.store.user_by_email(request.username)
            valid = await verify_password_off_loop(
                user.password_hash if user else None, request.password
            )
        if user is None or not valid or user.disabled_at is not None:
            await self.throttle.record_failure(admission)
            raise _bad_credentials()
        memberships = await self.store.memberships_of(user.id)
        chosen = [
            m for m in memberships if request.organisation_id in (None, str(m.organisation_id))
        ]
        if not chosen:
            await self.throttle.record_failure(admission)
            raise _bad_credentials()
        if len(chosen) > 1:
            raise OAuthError(
                "invalid_request",
                "You belong to several organisations: name one with organisation_id.",
                extra={
                    "organisations": [
                        {"id": str(m.organisation_id), "name": m.name, "kind": m.kind}
                        for m in chosen
                    ]
                },
            )
        await self.throttle.record_success(admission)
        membership = chosen[0]
        return await self._issue_user_tokens(
            user.id, membership.organisation_id, membership.roles, uuid.uuid4()
        )

    async def _issue_user_tokens(
        self, user_id: uuid.UUID, organisation_id: uuid.UUID, roles: list[str], family_id: uuid.UUID
    ) -> dict[str, Any]:
        access, claims = issue_access_token(
            self.keyring,
            self.settings,
            subject=str(user_id),
            kind="user",
            organisation_id=organisation_id,
            roles=roles,
            scopes=[],
        )
        refresh, refresh_hash = new_refresh_token()
        now = clock.now()
        await self.store.add_refresh_token(
            family_id=family_id,
            token_hash=refresh_hash,
            user_id=user_id,
            organisation_id=organisation_id,
            expires_at=now + timedelta(seconds=self.settings.refresh_token_ttl_seconds),
            now=now,
        )
        return {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": claims.exp - claims.iat,
            "refresh_token": refresh,
        }

    async def _client_credentials(self, request: TokenRequest, client_ip: str) -> dict[str, Any]:
        if not request.client_id or request.client_secret is None:
            raise OAuthError("invalid_request", "client_id and client_secret are required.")
        account = "client:" + request.client_id
        admission = await self.throttle.check(account, client_ip)
        async with hashing_slot():
            await set_db_context(self.session, context=DbContext.AUTH)
            client = await self.store.client_by_client_id(request.client_id)
            valid = await verify_client_secret_off_loop(
                client.secret_hash if client else None, request.client_secret
            )
        if not valid or client is None:
            await self.throttle.record_failure(admission)
            raise OAuthError("invalid_client", "Unknown client or wrong secret.", status=401)
        await self.throttle.record_success(admission)
        access, claims = issue_access_token(
            self.keyring,
            self.settings,
            subject=str(client.id),
            kind="client",
            organisation_id=client.organisation_id,
            roles=[],
            scopes=client.scopes,
        )
        return {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": claims.exp - claims.iat,
            "scope": " ".join(client.scopes),
        }

    async def _refresh(self, request: TokenRequest) -> dict[str, Any]:
        if not request.refresh_token:
            raise OAuthError("invalid_request", "refresh_token is required.")
        now = clock.now()
        row, spent_now = await self.store.spend_refresh_token(
            hash_secret(request.refresh_token), now
        )
        if row is None:
            raise OAuthError("invalid_grant", "Unknown refresh token.")
        if not spent_now:
            # A spent token presented again: someone else may hold the family. End it all.
            await self.store.revoke_family(row.family_id, now)
            raise OAuthError("invalid_grant", "This refresh token was already used; sign in again.")
        if row.expires_at <= now:
            raise OAuthError("invalid_grant", "The refresh token has expired; sign in again.")
        membership = await self.store.active_membership(row.user_id, row.organisation_id)
        if membership is None:
            await self.store.revoke_family(row.family_id, now)
            raise OAuthError("invalid_grant", "This sign-in is no longer valid.")
        return await self._issue_user_tokens(
            row.user_id, row.organisation_id, membership.roles, row.family_id
        )
