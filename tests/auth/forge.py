"""Hand-made JWTs for the refusal tests, built without the JWT library under test.

Forging with plain ``cryptography``/``hmac`` keeps the tests independent of ``jose``: a bug
shared by the signer and the verifier cannot hide here, and ``jose`` stays imported by
``api/auth/tokens.py`` alone.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def segment(value: dict[str, Any]) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode("utf-8"))


def signing_input(header: dict[str, Any], payload: dict[str, Any]) -> bytes:
    return f"{segment(header)}.{segment(payload)}".encode("ascii")


def es256(header: dict[str, Any], payload: dict[str, Any], key: ec.EllipticCurvePrivateKey) -> str:
    data = signing_input(header, payload)
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return f"{data.decode('ascii')}.{b64url(raw)}"


def rs256(header: dict[str, Any], payload: dict[str, Any], key: rsa.RSAPrivateKey) -> str:
    data = signing_input(header, payload)
    signature = key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    return f"{data.decode('ascii')}.{b64url(signature)}"


def hs256(header: dict[str, Any], payload: dict[str, Any], secret: bytes) -> str:
    data = signing_input(header, payload)
    signature = hmac.new(secret, data, hashlib.sha256).digest()
    return f"{data.decode('ascii')}.{b64url(signature)}"


def unsigned(header: dict[str, Any], payload: dict[str, Any]) -> str:
    return f"{signing_input(header, payload).decode('ascii')}."


def parts(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    header, payload, signature = token.split(".")
    return json.loads(b64url_decode(header)), json.loads(b64url_decode(payload)), signature
