"""Our access tokens: the happy path and every refusal the verifier promises."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from api.auth import tokens
from api.auth.keys import KeyRing
from api.auth.tokens import (
    ALGORITHM,
    LEEWAY_SECONDS,
    AccessClaims,
    hash_secret,
    issue_access_token,
    new_refresh_token,
    peek_issuer,
    verify_access_token,
)
from api.problems import Unauthenticated
from api.settings import Settings
from tests.auth import forge
from tests.auth.conftest import AUDIENCE, ISSUER, NOW

ORG = UUID("7f0c4a52-5d0e-4c55-9d55-2f1b0f0e8a11")
T = int(NOW.timestamp())


def issue(keyring: KeyRing, settings: Settings, **overrides: Any) -> tuple[str, AccessClaims]:
    arguments: dict[str, Any] = {
        "subject": "user-1",
        "kind": "user",
        "organisation_id": ORG,
        "roles": ["agent"],
        "scopes": [],
        "now": NOW,
    }
    arguments.update(overrides)
    return issue_access_token(keyring, settings, **arguments)


def valid_header(keyring: KeyRing) -> dict[str, Any]:
    return {"alg": "ES256", "typ": "at+jwt", "kid": keyring.signing_key.kid}


def valid_payload() -> dict[str, Any]:
    return {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user-1",
        "iat": T,
        "nbf": T,
        "exp": T + 900,
        "jti": str(uuid4()),
        "kind": "user",
        "org": str(ORG),
        "roles": ["agent"],
        "scope": "",
    }


def assert_refused(
    keyring: KeyRing, settings: Settings, token: str, detail: str = "Invalid access token"
) -> Unauthenticated:
    with pytest.raises(Unauthenticated) as caught:
        verify_access_token(keyring, settings, token, now=NOW)
    assert caught.value.detail == detail
    assert caught.value.headers["WWW-Authenticate"].startswith("Bearer")
    return caught.value


# --------------------------------------------------------------------------- happy path


def test_issued_token_verifies_with_the_same_claims(
    keyring: KeyRing, auth_settings: Settings
) -> None:
    token, issued = issue(
        keyring, auth_settings, kind="client", subject="cli_42", scopes=["dossiers:sync", "a:b"]
    )
    verified = verify_access_token(keyring, auth_settings, token, now=NOW + timedelta(minutes=5))
    assert verified == issued
    assert verified.organisation_id == ORG
    assert verified.scopes == ("dossiers:sync", "a:b")
    assert verified.exp - verified.iat == 900
    assert (verified.iss, verified.aud) == (ISSUER, AUDIENCE)


def test_issued_token_header_and_payload_shape(keyring: KeyRing, auth_settings: Settings) -> None:
    token, claims = issue(keyring, auth_settings, roles=["admin", "agent"], scopes=["x", "y"])
    header, payload, signature = forge.parts(token)
    assert header == {"alg": "ES256", "typ": "at+jwt", "kid": keyring.signing_key.kid}
    assert len(forge.b64url_decode(signature)) == 64  # raw r||s, as JWS ES256 requires
    assert payload == {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user-1",
        "iat": T,
        "nbf": T,
        "exp": T + 900,
        "jti": claims.jti,
        "kind": "user",
        "org": str(ORG),
        "roles": ["admin", "agent"],
        "scope": "x y",
    }


def test_each_token_has_a_distinct_jti(keyring: KeyRing, auth_settings: Settings) -> None:
    jtis = {issue(keyring, auth_settings)[1].jti for _ in range(5)}
    assert len(jtis) == 5


def test_hand_forged_token_with_every_field_right_verifies(
    keyring: KeyRing, auth_settings: Settings
) -> None:
    """Control for the refusal tests below: the forge itself produces acceptable tokens."""
    token = forge.es256(valid_header(keyring), valid_payload(), keyring.signing_key.private_key)
    assert verify_access_token(keyring, auth_settings, token, now=NOW).sub == "user-1"


def test_issue_refuses_programming_errors(keyring: KeyRing, auth_settings: Settings) -> None:
    with pytest.raises(TypeError):
        issue(keyring, auth_settings, roles="admin")
    with pytest.raises(ValueError):
        issue(keyring, auth_settings, scopes=["two words"])
    with pytest.raises(ValueError):
        issue(keyring, auth_settings, kind="robot")
    with pytest.raises(ValueError):
        issue(keyring, auth_settings, subject="")


# --------------------------------------------------------------------------- algorithm attacks


def test_alg_none_is_refused(keyring: KeyRing, auth_settings: Settings) -> None:
    for alg in ("none", "None", "NONE"):
        header = {**valid_header(keyring), "alg": alg}
        assert_refused(keyring, auth_settings, forge.unsigned(header, valid_payload()))


def test_hs256_signed_with_the_public_key_is_refused(
    keyring: KeyRing, auth_settings: Settings
) -> None:
    """Key confusion: the attacker knows our public key and uses it as an HMAC secret."""
    public = keyring.signing_key.public_key
    secrets = [
        public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        public.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        ),
    ]
    for secret in secrets:
        header = {**valid_header(keyring), "alg": "HS256"}
        assert_refused(keyring, auth_settings, forge.hs256(header, valid_payload(), secret))


def test_es256_signature_under_another_alg_name_is_refused(
    keyring: KeyRing, auth_settings: Settings
) -> None:
    header = {**valid_header(keyring), "alg": "ES384"}
    token = forge.es256(header, valid_payload(), keyring.signing_key.private_key)
    assert_refused(keyring, auth_settings, token)


# --------------------------------------------------------------------------- key selection


def test_unknown_kid_is_refused(keyring: KeyRing, auth_settings: Settings) -> None:
    header = {**valid_header(keyring), "kid": "not-a-key-of-ours"}
    token = forge.es256(header, valid_payload(), keyring.signing_key.private_key)
    assert_refused(keyring, auth_settings, token)


def test_missing_or_non_string_kid_is_refused(keyring: KeyRing, auth_settings: Settings) -> None:
    key = keyring.signing_key.private_key
    header = valid_header(keyring)
    del header["kid"]
    assert_refused(keyring, auth_settings, forge.es256(header, valid_payload(), key))
    header["kid"] = 1
    assert_refused(keyring, auth_settings, forge.es256(header, valid_payload(), key))


def test_token_signed_by_another_key_with_our_kid_is_refused(
    keyring: KeyRing, auth_settings: Settings
) -> None:
    impostor = ec.generate_private_key(ec.SECP256R1())
    token = forge.es256(valid_header(keyring), valid_payload(), impostor)
    assert_refused(keyring, auth_settings, token)


@pytest.mark.parametrize("member", ["jku", "jwk", "x5u", "x5c", "crit"])
def test_header_members_pointing_elsewhere_are_refused(
    keyring: KeyRing, auth_settings: Settings, member: str
) -> None:
    header = {**valid_header(keyring), member: "https://attacker.example/jwks.json"}
    token = forge.es256(header, valid_payload(), keyring.signing_key.private_key)
    assert_refused(keyring, auth_settings, token)


# --------------------------------------------------------------------------- integrity


def test_tampered_payload_is_refused(keyring: KeyRing, auth_settings: Settings) -> None:
    token, _ = issue(keyring, auth_settings)
    encoded_header, _, signature = token.split(".")
    _, payload, _ = forge.parts(token)
    payload["roles"] = ["admin"]
    tampered = f"{encoded_header}.{forge.segment(payload)}.{signature}"
    assert_refused(keyring, auth_settings, tampered)


def test_tampered_header_is_refused(keyring: KeyRing, auth_settings: Settings) -> None:
    token, _ = issue(keyring, auth_settings)
    header, _, _ = forge.parts(token)
    _, encoded_payload, signature = token.split(".")
    header["extra"] = "x"
    assert_refused(keyring, auth_settings, f"{forge.segment(header)}.{encoded_payload}.{signature}")


def test_truncated_signature_is_refused(keyring: KeyRing, auth_settings: Settings) -> None:
    token, _ = issue(keyring, auth_settings)
    assert_refused(keyring, auth_settings, token[:-4])


@pytest.mark.parametrize(
    "garbage", ["", "abc", "a.b.c", "a.b", "..", "x" * 10_000, "e30.e30.", "e30.e30.e30"]
)
def test_malformed_tokens_are_refused(
    keyring: KeyRing, auth_settings: Settings, garbage: str
) -> None:
    assert_refused(keyring, auth_settings, garbage)


# --------------------------------------------------------------------------- time


def test_expired_token_is_refused(keyring: KeyRing, auth_settings: Settings) -> None:
    token, claims = issue(keyring, auth_settings, now=NOW - timedelta(minutes=20))
    assert claims.exp < T
    assert_refused(keyring, auth_settings, token, detail="Access token expired")


def test_expiry_leeway_is_thirty_seconds(keyring: KeyRing, auth_settings: Settings) -> None:
    token, claims = issue(keyring, auth_settings)
    just_inside = NOW + timedelta(seconds=900 + LEEWAY_SECONDS - 1)
    assert verify_access_token(keyring, auth_settings, token, now=just_inside) == claims
    with pytest.raises(Unauthenticated, match="expired"):
        verify_access_token(
            keyring, auth_settings, token, now=NOW + timedelta(seconds=900 + LEEWAY_SECONDS)
        )


def test_token_issued_in_the_future_is_refused(keyring: KeyRing, auth_settings: Settings) -> None:
    token, _ = issue(keyring, auth_settings, now=NOW + timedelta(minutes=2))
    assert_refused(keyring, auth_settings, token)


def test_not_before_in_the_future_is_refused(keyring: KeyRing, auth_settings: Settings) -> None:
    key = keyring.signing_key.private_key
    payload = {**valid_payload(), "nbf": T + LEEWAY_SECONDS + 1}
    assert_refused(keyring, auth_settings, forge.es256(valid_header(keyring), payload, key))
    payload["nbf"] = T + LEEWAY_SECONDS  # within the leeway: clock skew is tolerated
    token = forge.es256(valid_header(keyring), payload, key)
    assert verify_access_token(keyring, auth_settings, token, now=NOW).nbf == payload["nbf"]


# --------------------------------------------------------------------------- issuer, audience


def test_wrong_audience_is_refused(keyring: KeyRing, auth_settings: Settings) -> None:
    other = auth_settings.model_copy(update={"jwt_audience": "another-api"})
    token, _ = issue(keyring, other)
    assert_refused(keyring, auth_settings, token)


def test_audience_list_is_refused(keyring: KeyRing, auth_settings: Settings) -> None:
    payload = {**valid_payload(), "aud": [AUDIENCE, "another-api"]}
    token = forge.es256(valid_header(keyring), payload, keyring.signing_key.private_key)
    assert_refused(keyring, auth_settings, token)


def test_wrong_issuer_is_refused(keyring: KeyRing, auth_settings: Settings) -> None:
    other = auth_settings.model_copy(update={"jwt_issuer": "urn:someone-else"})
    token, _ = issue(keyring, other)
    assert_refused(keyring, auth_settings, token)


# --------------------------------------------------------------------------- claims and typ


@pytest.mark.parametrize(
    "claim", ["iss", "aud", "sub", "iat", "nbf", "exp", "jti", "kind", "org", "roles", "scope"]
)
def test_missing_required_claim_is_refused(
    keyring: KeyRing, auth_settings: Settings, claim: str
) -> None:
    payload = valid_payload()
    del payload[claim]
    token = forge.es256(valid_header(keyring), payload, keyring.signing_key.private_key)
    assert_refused(keyring, auth_settings, token)


@pytest.mark.parametrize(
    ("claim", "value"),
    [
        ("org", "not-a-uuid"),
        ("org", 12),
        ("kind", "admin"),
        ("roles", "admin"),
        ("roles", ["admin", 1]),
        ("scope", ["a", "b"]),
        ("exp", str(T + 900)),
        ("exp", True),
        ("iat", 1.5),
        ("sub", ""),
        ("sub", 42),
        ("jti", ""),
    ],
)
def test_ill_typed_claim_is_refused(
    keyring: KeyRing, auth_settings: Settings, claim: str, value: object
) -> None:
    payload = {**valid_payload(), claim: value}
    token = forge.es256(valid_header(keyring), payload, keyring.signing_key.private_key)
    assert_refused(keyring, auth_settings, token)


@pytest.mark.parametrize("typ", ["JWT", "at+JWT ", "application/jwt", None])
def test_wrong_or_missing_typ_is_refused(
    keyring: KeyRing, auth_settings: Settings, typ: str | None
) -> None:
    header: dict[str, Any] = {**valid_header(keyring), "typ": typ}
    if typ is None:
        del header["typ"]
    token = forge.es256(header, valid_payload(), keyring.signing_key.private_key)
    assert_refused(keyring, auth_settings, token)


def test_refusal_details_do_not_say_which_check_failed(
    keyring: KeyRing, auth_settings: Settings
) -> None:
    key = keyring.signing_key.private_key
    impostor = ec.generate_private_key(ec.SECP256R1())
    bad = [
        forge.unsigned({**valid_header(keyring), "alg": "none"}, valid_payload()),
        forge.es256({**valid_header(keyring), "kid": "x"}, valid_payload(), key),
        forge.es256(valid_header(keyring), valid_payload(), impostor),
        forge.es256(valid_header(keyring), {**valid_payload(), "aud": "x"}, key),
        forge.es256(valid_header(keyring), {**valid_payload(), "iss": "x"}, key),
    ]
    details = {assert_refused(keyring, auth_settings, token).detail for token in bad}
    assert details == {"Invalid access token"}


# --------------------------------------------------------------------------- rotation


def test_old_key_tokens_verify_after_rotation_and_new_key_signs(
    tmp_path: Any, auth_settings: Settings
) -> None:
    folder = tmp_path / "ring"
    old_ring = KeyRing.load_or_create(folder)
    old_token, old_claims = issue(old_ring, auth_settings)

    new_key = KeyRing.rotate(folder)
    ring = KeyRing.from_folder(folder)

    assert ring.signing_key.kid == new_key.kid != old_ring.signing_key.kid
    assert verify_access_token(ring, auth_settings, old_token, now=NOW) == old_claims
    new_token, _ = issue(ring, auth_settings)
    assert forge.parts(new_token)[0]["kid"] == new_key.kid
    assert {k["kid"] for k in ring.jwks()["keys"]} == {new_key.kid, old_ring.signing_key.kid}
    # the old process's ring does not know the new key (hence: restart workers together)
    assert_refused(old_ring, auth_settings, new_token)
    # removing the old PEM retires its tokens
    old_ring.signing_key.path.unlink()
    assert_refused(KeyRing.from_folder(folder), auth_settings, old_token)


def test_a_token_verified_before_is_checked_again_at_each_use(
    tmp_path: Any, keyring: KeyRing, auth_settings: Settings
) -> None:
    token, claims = issue(keyring, auth_settings)
    assert verify_access_token(keyring, auth_settings, token, now=NOW) == claims
    assert verify_access_token(keyring, auth_settings, token, now=NOW) == claims
    # what its signature proved once is kept; the issuer and audience expected, the time
    # and the key ring are the caller's, every time
    assert_refused(keyring, auth_settings.model_copy(update={"jwt_issuer": "elsewhere"}), token)
    assert_refused(keyring, auth_settings.model_copy(update={"jwt_audience": "other"}), token)
    with pytest.raises(Unauthenticated, match="expired"):
        verify_access_token(keyring, auth_settings, token, now=NOW + timedelta(days=1))
    assert_refused(KeyRing.load_or_create(tmp_path / "another"), auth_settings, token)
    assert verify_access_token(keyring, auth_settings, token, now=NOW) == claims


def test_claims_dataclass_is_frozen(keyring: KeyRing, auth_settings: Settings) -> None:
    _, claims = issue(keyring, auth_settings)
    with pytest.raises(AttributeError):
        claims.sub = "someone-else"  # type: ignore[misc]
    assert replace(claims, roles=("admin",)) != claims


# --------------------------------------------------------------------------- opaque secrets


def test_refresh_tokens_are_random_and_stored_hashed() -> None:
    token, stored = new_refresh_token()
    other, other_stored = new_refresh_token()
    assert token != other and stored != other_stored
    assert len(token) >= 43  # 32 random bytes, base64url
    assert stored == hashlib.sha256(token.encode()).hexdigest() == hash_secret(token)
    assert token not in stored


def test_peek_issuer_reads_iss_without_trusting_it(keyring: KeyRing) -> None:
    impostor = ec.generate_private_key(ec.SECP256R1())
    token = forge.es256(valid_header(keyring), {"iss": "https://idp.example"}, impostor)
    assert peek_issuer(token) == "https://idp.example"
    assert peek_issuer("garbage") is None
    assert peek_issuer(forge.es256(valid_header(keyring), {"iss": 3}, impostor)) is None


def test_algorithm_is_pinned() -> None:
    assert ALGORITHM == "ES256" == tokens.ALGORITHM
