"""Access tokens: issuing and verifying our own JWTs, and verifying trusted external ones.

This is the only module that imports the JWT library (``jose``); everything else handles
:class:`AccessClaims` and plain strings, so the library's defaults and pitfalls are contained
here and reviewed once.

Our tokens (RFC 9068 shaped)
    Header ``{"alg": "ES256", "typ": "at+jwt", "kid": <thumbprint>}``; claims ``iss``, ``aud``,
    ``sub``, ``iat``, ``nbf``, ``exp``, ``jti``, ``kind`` (``user`` | ``client``), ``org``
    (acting organisation id), ``roles`` (array) and ``scope`` (space-separated, RFC 9068 §2.2.3).

Why verification is written this way
    * The algorithm is pinned (``algorithms=[ALGORITHM]``) and the header ``alg`` compared
      before anything else: a token cannot choose ``none`` or make us use the public key as an
      HMAC secret (the classic ES/HS confusion).
    * The key is chosen by ``kid`` among *our* keys only; no ``kid`` or an unknown one is a
      refusal, never "try every key", and header members that could point elsewhere
      (``jku``, ``jwk``, ``x5u``…) or demand unknown processing (``crit``) are refused.
    * ``typ`` must be ``at+jwt`` so that another JWT signed with the same key (should one
      ever exist) cannot be replayed as an access token.
    * Time claims are checked here, with an injectable clock and a 30 s leeway for clock skew
      between machines, and every claim is type-checked: jose validates only what it is told
      to and would accept, e.g., a missing ``exp``.
    * Every refusal raises :class:`Unauthenticated` with a short detail that says nothing
      about which check failed, except for expiry, which a client needs to know to refresh.

Refresh tokens and client secrets are opaque random strings (see :func:`new_refresh_token`).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import math
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, cast, get_args
from urllib.parse import urlsplit
from uuid import UUID, uuid4

import httpx
from jose import jwk, jwt
from jose.exceptions import JOSEError

from api.auth.keys import KeyRing
from api.problems import ServiceUnavailable, Unauthenticated
from api.settings import Settings

__all__ = [
    "ALGORITHM",
    "LEEWAY_SECONDS",
    "TOKEN_TYPE",
    "AccessClaims",
    "ExternalIssuer",
    "ExternalIssuerVerifier",
    "PrincipalKind",
    "hash_secret",
    "issue_access_token",
    "new_refresh_token",
    "peek_issuer",
    "verify_access_token",
]

logger = logging.getLogger(__name__)

ALGORITHM = "ES256"
TOKEN_TYPE = "at+jwt"  # noqa: S105 - the RFC 9068 "typ" value, not a secret
LEEWAY_SECONDS = 30
MAX_TOKEN_LENGTH = 8192  # refuse absurd inputs before decoding anything

PrincipalKind = Literal["user", "client"]
_KINDS: frozenset[str] = frozenset(get_args(PrincipalKind))
_ALLOWED_HEADER_MEMBERS = frozenset({"alg", "typ", "kid"})

# Passed fresh on every call: jose mutates the options it is given. Time claims are checked
# by ``_check_times`` (injectable clock); ``require_*`` for them would re-enable jose's own
# wall-clock checks, so their presence is checked there too.
_OWN_DECODE_OPTIONS: dict[str, Any] = {
    "verify_signature": True,
    "verify_aud": True,
    "verify_iss": True,
    "verify_sub": True,
    "verify_jti": True,
    "verify_iat": False,
    "verify_nbf": False,
    "verify_exp": False,
    "verify_at_hash": False,
    "require_aud": True,
    "require_iss": True,
    "require_sub": True,
    "require_jti": True,
}
_EXTERNAL_DECODE_OPTIONS: dict[str, Any] = {
    **_OWN_DECODE_OPTIONS,
    "verify_sub": False,
    "verify_jti": False,
    "require_sub": False,
    "require_jti": False,
}


def _invalid(detail: str = "Invalid access token") -> Unauthenticated:
    return Unauthenticated(
        detail=detail, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
    )


def _epoch(now: datetime | None) -> int:
    if now is None:
        return int(time.time())
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return math.floor(now.timestamp())


def _check_times(payload: Mapping[str, Any], now: int, *, require_iat_nbf: bool) -> None:
    """``exp`` in the past, or ``nbf``/``iat`` in the future, beyond the leeway: refused."""
    exp = payload.get("exp")
    if not isinstance(exp, int) or isinstance(exp, bool):
        raise _invalid()
    for name in ("iat", "nbf"):
        value = payload.get(name)
        if value is None and not require_iat_nbf:
            continue
        if not isinstance(value, int) or isinstance(value, bool):
            raise _invalid()
        if value > now + LEEWAY_SECONDS or value >= exp:
            raise _invalid()
    if now >= exp + LEEWAY_SECONDS:
        raise _invalid("Access token expired")


def _unverified_header(token: object) -> dict[str, Any]:
    """The header, *unauthenticated*: only used to pick a key and pre-check ``alg``."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH or token.count(".") != 2:
        raise _invalid()
    try:
        header = jwt.get_unverified_header(token)
    except (JOSEError, ValueError, TypeError):
        raise _invalid() from None
    if not isinstance(header, dict):
        raise _invalid()
    return header


# --------------------------------------------------------------------------- our own tokens


@dataclass(frozen=True)
class AccessClaims:
    """The verified content of one of our access tokens.

    ``sub`` is the user id (``kind == "user"``) or the API client id (``kind == "client"``);
    ``org`` is the organisation the principal acts for in this token.
    """

    sub: str
    kind: PrincipalKind
    org: UUID
    roles: tuple[str, ...]
    scopes: tuple[str, ...]
    jti: str
    iat: int
    nbf: int
    exp: int
    iss: str
    aud: str

    @property
    def organisation_id(self) -> UUID:
        return self.org

    def to_payload(self) -> dict[str, Any]:
        return {
            "iss": self.iss,
            "aud": self.aud,
            "sub": self.sub,
            "iat": self.iat,
            "nbf": self.nbf,
            "exp": self.exp,
            "jti": self.jti,
            "kind": self.kind,
            "org": str(self.org),
            "roles": list(self.roles),
            "scope": " ".join(self.scopes),
        }


def _names(values: Iterable[str], what: str) -> tuple[str, ...]:
    if isinstance(values, str):
        raise TypeError(f"{what} must be a collection of strings, not a string")
    names = tuple(values)
    for name in names:
        if not isinstance(name, str) or not name or any(c.isspace() for c in name):
            raise ValueError(f"invalid {what[:-1]}: {name!r}")
    return names


def issue_access_token(
    keyring: KeyRing,
    settings: Settings,
    *,
    subject: str,
    kind: PrincipalKind,
    organisation_id: UUID,
    roles: Iterable[str],
    scopes: Iterable[str],
    now: datetime | None = None,
) -> tuple[str, AccessClaims]:
    """Sign an access token with the ring's newest key; return it and its claims.

    Raises ``ValueError``/``TypeError`` on programming errors (unknown kind, empty subject,
    a role or scope containing whitespace, which the space-separated ``scope`` claim could
    not carry unambiguously).
    """
    if kind not in _KINDS:
        raise ValueError(f"unknown principal kind: {kind!r}")
    if not subject:
        raise ValueError("subject must not be empty")
    issued_at = _epoch(now)
    claims = AccessClaims(
        sub=subject,
        kind=kind,
        org=organisation_id,
        roles=_names(roles, "roles"),
        scopes=_names(scopes, "scopes"),
        jti=str(uuid4()),
        iat=issued_at,
        nbf=issued_at,
        exp=issued_at + settings.access_token_ttl_seconds,
        iss=settings.jwt_issuer,
        aud=settings.jwt_audience,
    )
    signing_key = keyring.signing_key
    token = jwt.encode(
        claims.to_payload(),
        signing_key.private_key,
        algorithm=ALGORITHM,
        headers={"kid": signing_key.kid, "typ": TOKEN_TYPE},
    )
    return cast(str, token), claims


def verify_access_token(
    keyring: KeyRing, settings: Settings, token: str, now: datetime | None = None
) -> AccessClaims:
    """Verify one of our access tokens; raise :class:`Unauthenticated` on any defect."""
    epoch = _epoch(now)
    known = _SIGNED.get(token) if isinstance(token, str) else None
    if known is not None:
        # verified before, header included (the signature covers it): only whether its key
        # is still ours can have changed, and the time
        known_kid, payload, claims = known
        if keyring.find(known_kid) is None:  # retired since
            raise _invalid()
        if claims is not None and (claims.iss, claims.aud) == (
            settings.jwt_issuer,
            settings.jwt_audience,
        ):
            # the other checks of _own_claims depend on the payload alone
            _check_times(payload, epoch, require_iat_nbf=True)
            return claims
        claims = _own_claims(payload, settings, epoch)
        _SIGNED[token] = (known_kid, payload, claims)
        return claims
    header = _unverified_header(token)
    if header.get("alg") != ALGORITHM or header.get("typ") != TOKEN_TYPE:
        raise _invalid()
    if not set(header) <= _ALLOWED_HEADER_MEMBERS:
        raise _invalid()
    kid = header.get("kid")
    key = keyring.find(kid) if isinstance(kid, str) else None
    if key is None or not isinstance(kid, str):  # also once a key is retired
        raise _invalid()
    try:
        payload = jwt.decode(
            token,
            jwk.construct(key.public_key, ALGORITHM),
            algorithms=[ALGORITHM],
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            options=dict(_OWN_DECODE_OPTIONS),
        )
    except (JOSEError, ValueError, TypeError):
        raise _invalid() from None
    if not isinstance(payload, dict):
        raise _invalid()
    _remember_signed(token, (kid, payload, None))
    # the claims (times included) are checked at every use, cached signature or not
    claims = _own_claims(payload, settings, epoch)
    _SIGNED[token] = (kid, payload, claims)
    return claims


#: tokens whose header and signature this process verified: their key id, payload and, once
#: they passed, their claims. A signature check costs more than the rest of a cached scope's
#: request, and decoding the header and type-checking the claims again ~5 % of it. Bounded;
#: cleared when full.
_SIGNED: dict[str, tuple[str, dict[str, Any], AccessClaims | None]] = {}
_SIGNED_SIZE = 4096


def _remember_signed(token: str, entry: tuple[str, dict[str, Any], AccessClaims | None]) -> None:
    if len(_SIGNED) >= _SIGNED_SIZE:
        _SIGNED.clear()
    _SIGNED[token] = entry


def _own_claims(payload: dict[str, Any], settings: Settings, now: int) -> AccessClaims:
    """Type-check every claim (the signature proves who wrote them, not that they are sane)."""
    _check_times(payload, now, require_iat_nbf=True)
    iss, aud, sub, jti = (payload.get(n) for n in ("iss", "aud", "sub", "jti"))
    kind, org, roles, scope = (payload.get(n) for n in ("kind", "org", "roles", "scope"))
    if iss != settings.jwt_issuer or aud != settings.jwt_audience:
        raise _invalid()
    if not (isinstance(sub, str) and sub and isinstance(jti, str) and jti):
        raise _invalid()
    if kind not in _KINDS or not isinstance(org, str):
        raise _invalid()
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise _invalid()
    if not isinstance(scope, str):
        raise _invalid()
    try:
        organisation_id = UUID(org)
    except ValueError:
        raise _invalid() from None
    return AccessClaims(
        sub=sub,
        kind=cast(PrincipalKind, kind),
        org=organisation_id,
        roles=tuple(roles),
        scopes=tuple(scope.split()),
        jti=jti,
        iat=payload["iat"],
        nbf=payload["nbf"],
        exp=payload["exp"],
        iss=iss,
        aud=aud,
    )


# --------------------------------------------------------------------------- opaque secrets


def hash_secret(value: str) -> str:
    """SHA-256 hex digest used to store and look up high-entropy opaque tokens.

    A fast hash is right here (unlike passwords): the values are 256-bit random strings, so
    there is nothing to brute-force, and a deterministic digest allows an indexed lookup.
    """
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def new_refresh_token() -> tuple[str, str]:
    """A new opaque refresh token: ``(value handed to the client, hash to store)``.

    Only the hash is stored, so a database leak does not yield usable refresh tokens.
    """
    token = secrets.token_urlsafe(32)
    return token, hash_secret(token)


# --------------------------------------------------------------------------- external issuers

JWKS_CACHE_TTL_SECONDS = 600.0
JWKS_MIN_REFETCH_INTERVAL_SECONDS = 60.0
JWKS_MAX_STALE_SECONDS = 3600.0
JWKS_MAX_BYTES = 256 * 1024
JWKS_TIMEOUT_SECONDS = 5.0
MIN_RSA_BITS = 2048
_PRIVATE_JWK_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


@dataclass(frozen=True)
class ExternalIssuer:
    """A trusted OIDC provider: its ``iss``, where its JWKS is, and the audience it uses for us.

    ``jwks_url`` must be ``https`` (plain ``http`` only to a loopback host, for a local
    Keycloak): the JWKS is the trust anchor, fetching it in clear would let anyone on the path
    substitute keys.
    """

    issuer: str
    jwks_url: str
    audience: str

    def __post_init__(self) -> None:
        parts = urlsplit(self.jwks_url)
        loopback = parts.hostname in {"localhost", "127.0.0.1", "::1"}
        if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
            raise ValueError(f"jwks_url must be https: {self.jwks_url}")
        if not self.issuer or not self.audience:
            raise ValueError("issuer and audience must not be empty")


@dataclass(frozen=True)
class _ExternalKey:
    kid: str
    alg: str
    key: Any = field(repr=False)  # a jose Key


def _rsa_bits(modulus: object) -> int:
    if not isinstance(modulus, str):
        return 0
    try:
        raw = base64.urlsafe_b64decode(modulus + "=" * (-len(modulus) % 4))
    except ValueError:
        return 0
    return int.from_bytes(raw, "big").bit_length()


def _parse_jwk(entry: object) -> _ExternalKey | None:
    """A usable verification key, or ``None`` for anything we will not verify with.

    The algorithm is decided by the key, never by the token: RSA keys verify RS256 only,
    P-256 keys ES256 only; an ``alg`` member saying otherwise (or ``HS*``, ``none``) drops
    the key. Symmetric (``oct``) keys, keys carrying private members, encryption keys and
    RSA keys under 2048 bits are dropped too.
    """
    if not isinstance(entry, dict):
        return None
    kid, kty, alg = entry.get("kid"), entry.get("kty"), entry.get("alg")
    if not isinstance(kid, str) or not kid or entry.get("use", "sig") != "sig":
        return None
    if _PRIVATE_JWK_MEMBERS & set(entry):
        return None
    members: tuple[str, ...]
    if kty == "RSA" and _rsa_bits(entry.get("n")) >= MIN_RSA_BITS:
        expected, members = "RS256", ("kty", "n", "e")
    elif kty == "EC" and entry.get("crv") == "P-256":
        expected, members = "ES256", ("kty", "crv", "x", "y")
    else:
        return None
    if alg is not None and alg != expected:
        return None
    try:
        key = jwk.construct({m: entry[m] for m in members}, expected)
    except (JOSEError, KeyError, ValueError, TypeError):
        return None
    return _ExternalKey(kid=kid, alg=expected, key=key)


class ExternalIssuerVerifier:
    """Verifies tokens of one :class:`ExternalIssuer` and returns their verified e-mail.

    JWKS caching: keys are fetched on first use and kept 10 minutes. A token naming an unknown
    ``kid`` triggers a refetch (the provider may have rotated), but at most one fetch per
    minute whatever the cause, so forged ``kid`` values cannot turn us into a request
    amplifier against the provider. A failed fetch keeps the previous keys for at most an hour
    (the provider being briefly down should not log everybody out; a key it removed should not
    be trusted forever). Fetches are serialised by a lock: a burst of requests makes one fetch.

    ``http``: an ``httpx.AsyncClient`` owned by the caller (tests pass one with a
    ``MockTransport``); without it a short-lived client is used per fetch.
    """

    def __init__(
        self,
        issuer: ExternalIssuer,
        *,
        http: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.issuer = issuer
        self._http = http
        self._clock = clock
        self._keys: dict[str, _ExternalKey] = {}
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._lock = asyncio.Lock()

    async def verify(self, token: str, now: datetime | None = None) -> str:
        """The ``email`` of a valid token from this issuer; :class:`Unauthenticated` otherwise.

        Required: a signature by a JWKS key (RS256/ES256 as the key dictates), ``iss`` equal
        to the issuer, ``aud`` containing our audience, a valid ``exp`` (``nbf``/``iat``
        checked when present) and an ``email``; ``email_verified``, when present, must be
        ``true`` (an unverified address must not map to one of our users). The address is
        returned as given: matching it to a user is the caller's job.
        """
        header = _unverified_header(token)
        alg, kid = header.get("alg"), header.get("kid")
        if not isinstance(kid, str) or "crit" in header:
            raise _invalid()
        key = await self._key(kid)
        if key is None or alg != key.alg:
            raise _invalid()
        try:
            payload = jwt.decode(
                token,
                key.key,
                algorithms=[key.alg],
                audience=self.issuer.audience,
                issuer=self.issuer.issuer,
                options=dict(_EXTERNAL_DECODE_OPTIONS),
            )
        except (JOSEError, ValueError, TypeError):
            raise _invalid() from None
        if not isinstance(payload, dict) or payload.get("iss") != self.issuer.issuer:
            raise _invalid()
        _check_times(payload, _epoch(now), require_iat_nbf=False)
        email = payload.get("email")
        if not isinstance(email, str) or "@" not in email or len(email) > 320:
            raise _invalid()
        if "email_verified" in payload and payload["email_verified"] is not True:
            raise _invalid()
        return email.strip()

    async def _key(self, kid: str) -> _ExternalKey | None:
        async with self._lock:
            now = self._clock()
            fresh = self._fetched_at is not None and now - self._fetched_at < (
                JWKS_CACHE_TTL_SECONDS
            )
            if not fresh and self._may_fetch(now):
                await self._refresh(now)
            key = self._keys.get(kid)
            if key is None and self._may_fetch(now):
                await self._refresh(now)
                key = self._keys.get(kid)
            if self._fetched_at is None or now - self._fetched_at > JWKS_MAX_STALE_SECONDS:
                self._keys = {}
                raise ServiceUnavailable(detail="Identity provider keys unavailable")
            return key

    def _may_fetch(self, now: float) -> bool:
        return (
            self._attempted_at is None
            or now - self._attempted_at >= JWKS_MIN_REFETCH_INTERVAL_SECONDS
        )

    async def _refresh(self, now: float) -> None:
        self._attempted_at = now
        try:
            keys = await self._fetch()
        except (httpx.HTTPError, ValueError) as exc:
            logger.warning("JWKS fetch from %s failed: %s", self.issuer.jwks_url, exc)
            return
        self._keys = keys
        self._fetched_at = now

    async def _fetch(self) -> dict[str, _ExternalKey]:
        if self._http is None:
            async with httpx.AsyncClient(
                timeout=JWKS_TIMEOUT_SECONDS, follow_redirects=False
            ) as client:
                response = await self._get(client)
        else:
            response = await self._get(self._http)
        if response.status_code != 200:
            raise ValueError(f"status {response.status_code}")
        if len(response.content) > JWKS_MAX_BYTES:
            raise ValueError("JWKS too large")
        document = response.json()
        entries = document.get("keys") if isinstance(document, dict) else None
        if not isinstance(entries, list):
            raise ValueError("not a JWK Set")
        keys: dict[str, _ExternalKey] = {}
        ambiguous: set[str] = set()
        for entry in entries:
            parsed = _parse_jwk(entry)
            if parsed is None:
                continue
            if parsed.kid in keys:
                ambiguous.add(parsed.kid)  # two keys, one kid: verify with neither
            keys[parsed.kid] = parsed
        return {kid: key for kid, key in keys.items() if kid not in ambiguous}

    async def _get(self, client: httpx.AsyncClient) -> httpx.Response:
        return await client.get(
            self.issuer.jwks_url,
            headers={"Accept": "application/json"},
            timeout=JWKS_TIMEOUT_SECONDS,
            follow_redirects=False,
        )


def peek_issuer(token: str) -> str | None:
    """The *unverified* ``iss`` of a token, to route it to the right verifier.

    Never trust the result for anything else: it only selects which issuer's keys will then
    verify the token (and that verification re-checks ``iss``).
    """
    try:
        _unverified_header(token)  # shape and size checks
        claims = jwt.get_unverified_claims(token)
    except (Unauthenticated, JOSEError, ValueError, TypeError):
        return None
    issuer = claims.get("iss") if isinstance(claims, dict) else None
    return issuer if isinstance(issuer, str) else None
