"""Signing keys for the access tokens this service issues.

Keys are EC P-256 private keys, one PEM file each, in one folder (``Settings.keys_dir``).

Rotation without downtime
    The *newest* key (file modification time, ties broken by file name) signs new tokens;
    *every* key in the folder verifies. To rotate: drop a new PEM in (``KeyRing.rotate``),
    restart; tokens signed by the previous key keep verifying until its PEM is removed, which
    should wait at least one access-token lifetime (15 minutes). Restart every worker of a
    deployment together: a worker still holding the old ring does not know the new ``kid``
    and refuses tokens signed by it until it restarts. ``mtime`` is what orders keys, so copy
    key files with their times preserved (``cp -p``, ``rsync -t``).

Key identifiers
    ``kid`` is the RFC 7638 JWK thumbprint of the public key: derived from the key itself, so
    it is stable across restarts and machines, cannot collide between different keys, and
    needs no side file. Verification picks the key by ``kid`` and never tries "all keys".

File safety
    The folder is created with mode 0700 and key files with mode 0600. A new key is written to
    a temporary name and renamed into place, so a concurrently starting process never reads a
    half-written PEM, and ``load_or_create`` holds an exclusive lock on the folder so that
    several workers starting on an empty folder agree on a single first key.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

__all__ = ["KeyRing", "SigningKey", "jwk_thumbprint"]

_LOCK_NAME = ".lock"
_COORDINATE_BYTES = 32  # P-256 coordinates are 32 bytes, left-padded (RFC 7518 §6.2.1.2)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _public_members(public_key: ec.EllipticCurvePublicKey) -> dict[str, str]:
    """The required JWK members of an EC P-256 public key (RFC 7518 §6.2.1)."""
    numbers = public_key.public_numbers()
    return {
        "crv": "P-256",
        "kty": "EC",
        "x": _b64url(numbers.x.to_bytes(_COORDINATE_BYTES, "big")),
        "y": _b64url(numbers.y.to_bytes(_COORDINATE_BYTES, "big")),
    }


def jwk_thumbprint(public_key: ec.EllipticCurvePublicKey) -> str:
    """RFC 7638 thumbprint: SHA-256 over the required members, sorted, no whitespace."""
    canonical = json.dumps(
        _public_members(public_key), sort_keys=True, separators=(",", ":")
    ).encode("ascii")
    return _b64url(hashlib.sha256(canonical).digest())


@dataclass(frozen=True)
class SigningKey:
    """One key of the ring: its identifier, the private key and where it came from."""

    kid: str
    private_key: ec.EllipticCurvePrivateKey = field(repr=False)
    path: Path
    mtime_ns: int

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self.private_key.public_key()

    def public_jwk(self) -> dict[str, str]:
        """The public JWK published in the JWKS; never any private member."""
        return {
            **_public_members(self.public_key),
            "kid": self.kid,
            "use": "sig",
            "alg": "ES256",
        }


@dataclass(frozen=True)
class KeyRing:
    """Every loaded key, newest first: ``keys[0]`` signs, all verify."""

    keys: tuple[SigningKey, ...]

    def __post_init__(self) -> None:
        if not self.keys:
            raise ValueError("a key ring needs at least one key")

    @property
    def signing_key(self) -> SigningKey:
        return self.keys[0]

    def find(self, kid: str) -> SigningKey | None:
        """The key named ``kid``, or ``None``: verification never falls back to another key."""
        for key in self.keys:
            if secrets.compare_digest(key.kid, kid):
                return key
        return None

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """The JWK Set served at ``/.well-known/jwks.json``: public halves only."""
        return {"keys": [key.public_jwk() for key in self.keys]}

    @classmethod
    def from_folder(cls, folder: Path) -> KeyRing:
        """Load every ``*.pem`` of ``folder``; raise if there is none or one is unusable.

        An unreadable, encrypted or non-P-256 PEM is a configuration error and fails loudly
        at start rather than being skipped: a silently ignored key would make every token it
        signed fail later, far from the cause.
        """
        loaded: dict[str, SigningKey] = {}
        for path in sorted(folder.glob("*.pem")):
            key = _load_key(path)
            previous = loaded.get(key.kid)
            # The same key present twice (a copy): keep the newest file for ordering.
            if previous is None or (key.mtime_ns, key.path.name) > (
                previous.mtime_ns,
                previous.path.name,
            ):
                loaded[key.kid] = key
        if not loaded:
            raise FileNotFoundError(f"no *.pem signing key in {folder}")
        ordered = sorted(loaded.values(), key=lambda k: (k.mtime_ns, k.path.name), reverse=True)
        return cls(tuple(ordered))

    @classmethod
    def load_or_create(cls, folder: Path) -> KeyRing:
        """Load the ring from ``folder``, first creating the folder and one key if empty."""
        _ensure_folder(folder)
        with _folder_lock(folder):
            if not any(folder.glob("*.pem")):
                _write_new_key(folder)
            return cls.from_folder(folder)

    @staticmethod
    def rotate(folder: Path) -> SigningKey:
        """Write a new key into ``folder``; it signs once the processes restart.

        Old keys stay and keep verifying; remove their files once every token they signed
        has expired (one access-token lifetime after every worker restarted).
        """
        _ensure_folder(folder)
        with _folder_lock(folder):
            return _write_new_key(folder)


def _ensure_folder(folder: Path) -> None:
    if not folder.exists():
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        # mkdir's mode is filtered by the umask; set it explicitly.
        folder.chmod(0o700)


@contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    """An exclusive advisory lock shared by every process using ``folder``."""
    descriptor = os.open(folder / _LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(descriptor, fcntl.LOCK_UN)
        os.close(descriptor)


def _load_key(path: Path) -> SigningKey:
    private_key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(private_key, ec.EllipticCurvePrivateKey) or not isinstance(
        private_key.curve, ec.SECP256R1
    ):
        raise ValueError(f"{path}: not an EC P-256 private key")
    return SigningKey(
        kid=jwk_thumbprint(private_key.public_key()),
        private_key=private_key,
        path=path,
        mtime_ns=path.stat().st_mtime_ns,
    )


def _write_new_key(folder: Path) -> SigningKey:
    private_key = ec.generate_private_key(ec.SECP256R1())
    pem = private_key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    )
    kid = jwk_thumbprint(private_key.public_key())
    # The UTC timestamp in the name orders keys when mtimes tie (coarse file systems).
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    final = folder / f"key-{stamp}-{kid[:12]}.pem"
    temporary = folder / f".{final.name}.{secrets.token_hex(4)}.tmp"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        os.fchmod(handle.fileno(), 0o600)  # the umask may remove bits, never add any
        handle.write(pem)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, final)
    return SigningKey(
        kid=kid, private_key=private_key, path=final, mtime_ns=final.stat().st_mtime_ns
    )
