"""Tokens from trusted external OIDC issuers, against a JWKS served by a mock transport.

The remote identity provider is a network boundary, so it is replaced by an
``httpx.MockTransport``; the keys, signatures and verification are all real.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from api.auth.tokens import ExternalIssuer, ExternalIssuerVerifier
from api.problems import ServiceUnavailable, Unauthenticated
from tests.auth import forge
from tests.auth.conftest import NOW

ISSUER = "https://idp.example/realms/social"
JWKS_URL = "https://idp.example/realms/social/protocol/openid-connect/certs"
AUDIENCE = "guichet"
T = int(NOW.timestamp())


def rsa_jwk(key: rsa.RSAPrivateKey, kid: str, **extra: Any) -> dict[str, Any]:
    numbers = key.public_key().public_numbers()
    size = (numbers.n.bit_length() + 7) // 8
    return {
        "kty": "RSA",
        "kid": kid,
        "use": "sig",
        "alg": "RS256",
        "n": forge.b64url(numbers.n.to_bytes(size, "big")),
        "e": forge.b64url(numbers.e.to_bytes(3, "big")),
        **extra,
    }


def ec_jwk(key: ec.EllipticCurvePrivateKey, kid: str) -> dict[str, Any]:
    numbers = key.public_key().public_numbers()
    return {
        "kty": "EC",
        "crv": "P-256",
        "kid": kid,
        "x": forge.b64url(numbers.x.to_bytes(32, "big")),
        "y": forge.b64url(numbers.y.to_bytes(32, "big")),
    }


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def rsa_key_2() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class IdP:
    """The fake provider: what its JWKS endpoint answers, and how often it was asked."""

    keys: list[dict[str, Any]]
    status: int = 200
    requests: list[httpx.Request] = field(default_factory=list)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.status != 200:
            return httpx.Response(self.status)
        return httpx.Response(200, json={"keys": self.keys})


@dataclass
class Harness:
    idp: IdP
    clock: Clock
    verifier: ExternalIssuerVerifier


@pytest.fixture
async def harness(rsa_key: rsa.RSAPrivateKey) -> AsyncIterator[Harness]:
    idp = IdP(keys=[rsa_jwk(rsa_key, "rsa-1")])
    clock = Clock()
    async with httpx.AsyncClient(transport=httpx.MockTransport(idp.handle)) as client:
        verifier = ExternalIssuerVerifier(
            ExternalIssuer(issuer=ISSUER, jwks_url=JWKS_URL, audience=AUDIENCE),
            http=client,
            clock=clock,
        )
        yield Harness(idp, clock, verifier)


def claims(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "f:1234",
        "iat": T,
        "exp": T + 300,
        "email": "agent@mairie-exemple.fr",
        "email_verified": True,
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def rsa_token(key: rsa.RSAPrivateKey, kid: str = "rsa-1", **overrides: Any) -> str:
    return forge.rs256({"alg": "RS256", "typ": "JWT", "kid": kid}, claims(**overrides), key)


async def refused(harness: Harness, token: str) -> None:
    with pytest.raises(Unauthenticated) as caught:
        await harness.verifier.verify(token, now=NOW)
    assert caught.value.detail in {"Invalid access token", "Access token expired"}


async def test_valid_rs256_token_yields_the_email(
    harness: Harness, rsa_key: rsa.RSAPrivateKey
) -> None:
    assert await harness.verifier.verify(rsa_token(rsa_key), now=NOW) == "agent@mairie-exemple.fr"
    assert [str(r.url) for r in harness.idp.requests] == [JWKS_URL]


async def test_valid_es256_token_and_audience_list(harness: Harness) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    harness.idp.keys = [ec_jwk(key, "ec-1")]
    token = forge.es256({"alg": "ES256", "kid": "ec-1"}, claims(aud=["other", AUDIENCE]), key)
    assert await harness.verifier.verify(token, now=NOW) == "agent@mairie-exemple.fr"


async def test_email_verified_may_be_absent(harness: Harness, rsa_key: rsa.RSAPrivateKey) -> None:
    token = rsa_token(rsa_key, email_verified=None)
    assert await harness.verifier.verify(token, now=NOW) == "agent@mairie-exemple.fr"


@pytest.mark.parametrize(
    "overrides",
    [
        {"email_verified": False},
        {"email_verified": "true"},
        {"email": None},
        {"email": "not-an-address"},
        {"email": ["agent@mairie-exemple.fr"]},
        {"aud": "another-client"},
        {"aud": None},
        {"iss": "https://evil.example/realms/social"},
        {"iss": None},
        {"exp": T - 60},
        {"exp": None},
        {"nbf": T + 120},
        {"iat": T + 120},
    ],
    ids=repr,
)
async def test_invalid_claims_are_refused(
    harness: Harness, rsa_key: rsa.RSAPrivateKey, overrides: dict[str, Any]
) -> None:
    await refused(harness, rsa_token(rsa_key, **overrides))


async def test_signature_by_another_key_is_refused(
    harness: Harness, rsa_key_2: rsa.RSAPrivateKey
) -> None:
    await refused(harness, rsa_token(rsa_key_2))


async def test_tampered_token_is_refused(harness: Harness, rsa_key: rsa.RSAPrivateKey) -> None:
    header, _, signature = rsa_token(rsa_key).split(".")
    payload = forge.segment(claims(email="admin@plateforme.fr"))
    await refused(harness, f"{header}.{payload}.{signature}")


async def test_alg_none_and_hmac_are_refused(harness: Harness, rsa_key: rsa.RSAPrivateKey) -> None:
    jwk = rsa_jwk(rsa_key, "rsa-1")
    await refused(harness, forge.unsigned({"alg": "none", "kid": "rsa-1"}, claims()))
    for secret in (json.dumps(jwk).encode(), forge.b64url_decode(jwk["n"])):
        await refused(harness, forge.hs256({"alg": "HS256", "kid": "rsa-1"}, claims(), secret))


async def test_algorithm_is_the_keys_not_the_tokens(
    harness: Harness, rsa_key: rsa.RSAPrivateKey
) -> None:
    """An RSA key verifies RS256 only: a PS256/RS512 header is refused even if well signed."""
    for alg in ("PS256", "RS512", "ES256"):
        token = forge.rs256({"alg": alg, "kid": "rsa-1"}, claims(), rsa_key)
        await refused(harness, token)


async def test_symmetric_weak_and_mislabelled_keys_in_the_jwks_are_ignored(
    harness: Harness,
) -> None:
    secret = b"shared-secret-of-at-least-32-bytes!!"
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - must be refused
    mislabelled = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    harness.idp.keys = [
        {"kty": "oct", "kid": "hmac", "k": forge.b64url(secret), "alg": "HS256"},
        rsa_jwk(weak, "weak"),
        rsa_jwk(mislabelled, "enc", use="enc"),
        rsa_jwk(mislabelled, "hs", alg="HS256"),
        rsa_jwk(mislabelled, "private", d="AQAB"),
    ]
    await refused(harness, forge.hs256({"alg": "HS256", "kid": "hmac"}, claims(), secret))
    await refused(harness, rsa_token(weak, kid="weak"))
    for kid in ("enc", "hs", "private"):
        await refused(harness, rsa_token(mislabelled, kid=kid))


async def test_duplicate_kid_in_the_jwks_verifies_with_neither(
    harness: Harness, rsa_key: rsa.RSAPrivateKey, rsa_key_2: rsa.RSAPrivateKey
) -> None:
    harness.idp.keys = [rsa_jwk(rsa_key, "dup"), rsa_jwk(rsa_key_2, "dup")]
    await refused(harness, rsa_token(rsa_key, kid="dup"))
    await refused(harness, rsa_token(rsa_key_2, kid="dup"))


async def test_missing_kid_is_refused(harness: Harness, rsa_key: rsa.RSAPrivateKey) -> None:
    await refused(harness, forge.rs256({"alg": "RS256"}, claims(), rsa_key))


async def test_jwks_is_cached_for_ten_minutes(harness: Harness, rsa_key: rsa.RSAPrivateKey) -> None:
    token = rsa_token(rsa_key)
    for _ in range(5):
        await harness.verifier.verify(token, now=NOW)
        harness.clock.now += 100
    assert len(harness.idp.requests) == 1  # t = 0 .. 400
    harness.clock.now = 599
    await harness.verifier.verify(token, now=NOW)
    assert len(harness.idp.requests) == 1
    harness.clock.now = 600
    await harness.verifier.verify(token, now=NOW)
    assert len(harness.idp.requests) == 2


async def test_unknown_kid_refetches_at_most_once_a_minute(
    harness: Harness, rsa_key: rsa.RSAPrivateKey, rsa_key_2: rsa.RSAPrivateKey
) -> None:
    await harness.verifier.verify(rsa_token(rsa_key), now=NOW)  # fetch 1 at t=0
    harness.clock.now = 30
    for _ in range(10):  # forged kids: no fetch within the minute
        await refused(harness, rsa_token(rsa_key, kid="forged"))
    assert len(harness.idp.requests) == 1

    harness.idp.keys.append(rsa_jwk(rsa_key_2, "rsa-2"))  # the provider rotates
    harness.clock.now = 61
    assert await harness.verifier.verify(rsa_token(rsa_key_2, kid="rsa-2"), now=NOW)
    assert len(harness.idp.requests) == 2
    harness.clock.now = 90
    await refused(harness, rsa_token(rsa_key, kid="forged"))
    assert len(harness.idp.requests) == 2


async def test_failed_refresh_keeps_known_keys_for_a_while(
    harness: Harness, rsa_key: rsa.RSAPrivateKey
) -> None:
    token = rsa_token(rsa_key)
    await harness.verifier.verify(token, now=NOW)
    harness.idp.status = 503
    harness.clock.now = 700  # cache expired, refresh fails: still verifies with known keys
    assert await harness.verifier.verify(token, now=NOW)
    assert len(harness.idp.requests) == 2
    harness.clock.now = 3601  # beyond an hour without a successful fetch: keys dropped
    with pytest.raises(ServiceUnavailable):
        await harness.verifier.verify(token, now=NOW)


async def test_unreachable_provider_without_keys_is_unavailable(
    harness: Harness, rsa_key: rsa.RSAPrivateKey
) -> None:
    harness.idp.status = 500
    with pytest.raises(ServiceUnavailable):
        await harness.verifier.verify(rsa_token(rsa_key), now=NOW)
    harness.idp.status = 200
    harness.clock.now = 60
    assert await harness.verifier.verify(rsa_token(rsa_key), now=NOW)


async def test_garbage_jwks_documents_are_not_trusted(
    harness: Harness, rsa_key: rsa.RSAPrivateKey
) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b'{"keys": "nope"}')

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
        verifier = ExternalIssuerVerifier(
            ExternalIssuer(ISSUER, JWKS_URL, AUDIENCE), http=client, clock=harness.clock
        )
        with pytest.raises(ServiceUnavailable):
            await verifier.verify(rsa_token(rsa_key), now=NOW)


def test_jwks_url_must_be_https() -> None:
    with pytest.raises(ValueError):
        ExternalIssuer(ISSUER, "http://idp.example/certs", AUDIENCE)
    ExternalIssuer(ISSUER, "http://localhost:8080/certs", AUDIENCE)  # local Keycloak
    with pytest.raises(ValueError):
        ExternalIssuer("", JWKS_URL, AUDIENCE)
