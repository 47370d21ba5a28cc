"""Password and client-secret hashing: argon2id (argon2-cffi defaults, RFC 9106 profile).

Why these choices
    * argon2id is memory-hard, so a leaked hash table is expensive to brute-force on GPUs;
      the library's defaults (t=3, m=64 MiB, p=4) follow RFC 9106's second recommended option.
      Parameters live in the encoded hash, so raising them later only needs
      :func:`needs_rehash` at the next successful login.
    * :func:`verify_password` never raises and answers a plain ``bool``: callers cannot leak
      *why* a check failed (mismatch, corrupt hash, unknown user) through different errors.
    * :data:`DUMMY_HASH` lets the login path spend the same argon2 time on an unknown account
      as on a wrong password (pass ``None`` as the hash), so response time does not reveal
      which e-mail addresses have accounts.
    * API-client secrets are random 256-bit strings; hashing them with argon2 too costs a few
      milliseconds per ``client_credentials`` grant and keeps one verification path.
"""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

__all__ = [
    "DUMMY_HASH",
    "hash_client_secret",
    "hash_password",
    "needs_rehash",
    "new_client_secret",
    "verify_client_secret",
    "verify_password",
]

_HASHER = PasswordHasher()  # argon2id, RFC 9106 low-memory profile

#: Hash of a random, immediately forgotten password: verifying anything against it fails,
#: after exactly the work a real verification costs (same parameters as real hashes).
DUMMY_HASH: str = _HASHER.hash(secrets.token_urlsafe(32))


def hash_password(password: str) -> str:
    """The encoded argon2id hash (salt and parameters included) to store."""
    return _HASHER.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches ``password_hash``; never raises.

    ``None`` (no such account, or an account without a password) is checked against
    :data:`DUMMY_HASH` and answers ``False`` after the same amount of work.
    """
    try:
        return _HASHER.verify(password_hash or DUMMY_HASH, password) and bool(password_hash)
    except (VerificationError, InvalidHashError, ValueError, TypeError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """Whether the hash was made with other parameters than today's (rehash after login)."""
    try:
        return _HASHER.check_needs_rehash(password_hash)
    except (InvalidHashError, ValueError):
        return True


def new_client_secret() -> str:
    """A new API-client secret (256 random bits), shown to the client once."""
    return secrets.token_urlsafe(32)


def hash_client_secret(secret: str) -> str:
    return hash_password(secret)


def verify_client_secret(secret_hash: str | None, secret: str) -> bool:
    return verify_password(secret_hash, secret)
