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
    * Requests hash and verify **off the event loop**, in a bounded pool of threads
      (:data:`HASHING_THREADS`; argon2-cffi releases the GIL while it works): a burst of
      logins then queues behind that pool instead of stalling every other request of the
      process. A login takes a :func:`hashing_slot` *before* it opens its database
      transaction, so the logins waiting in that queue hold no pooled connection (100 of them
      would otherwise hold the whole pool, and every other request would wait for it). The
      queue itself is bounded (:data:`MAX_WAITING`): beyond it a login is answered 503 with
      ``Retry-After`` at once rather than after a long wait.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, suppress
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from api.problems import ServiceUnavailable

T = TypeVar("T")

__all__ = [
    "DUMMY_HASH",
    "hash_client_secret",
    "hash_password",
    "hash_password_off_loop",
    "hashing_slot",
    "needs_rehash",
    "new_client_secret",
    "verify_client_secret",
    "verify_client_secret_off_loop",
    "verify_password",
    "verify_password_off_loop",
]

#: argon2 runs with p=4 lanes; two verifications at once already keep two cores busy
HASHING_THREADS = max(1, min(4, (os.cpu_count() or 2) // 2))
#: hashing jobs queued or running per process before a login is refused with 503
MAX_WAITING = 64

#: nice value of the hashing threads (Linux schedules threads one by one): under a flood of
#: logins the cores go to the other requests first; argon2's own lane threads inherit it
HASHING_NICENESS = 10


def _lower_priority() -> None:
    with suppress(OSError, AttributeError):  # not Linux, or not allowed: run at normal priority
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASHING_NICENESS)


_POOL = ThreadPoolExecutor(
    max_workers=HASHING_THREADS, thread_name_prefix="argon2", initializer=_lower_priority
)
_slots: asyncio.Semaphore | None = None  # made on first use, in the running event loop
_waiting = 0

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


@asynccontextmanager
async def hashing_slot() -> AsyncIterator[None]:
    """Wait for one of the :data:`HASHING_THREADS` slots (503 when :data:`MAX_WAITING` are
    already queued); take it before opening the transaction whose hash it will check."""
    global _slots, _waiting  # per process, touched only from the event loop's thread
    if _slots is None:
        _slots = asyncio.Semaphore(HASHING_THREADS)
    if _waiting >= MAX_WAITING:
        raise ServiceUnavailable(
            detail="Too many sign-ins are being checked; retry shortly.",
            headers={"Retry-After": "1"},
        )
    _waiting += 1
    try:
        async with _slots:
            yield
    finally:
        _waiting -= 1


async def _off_loop(work: Callable[[], T]) -> T:
    return await asyncio.get_running_loop().run_in_executor(_POOL, work)


async def verify_password_off_loop(password_hash: str | None, password: str) -> bool:
    """:func:`verify_password` in the bounded hashing pool."""
    return await _off_loop(lambda: verify_password(password_hash, password))


async def verify_client_secret_off_loop(secret_hash: str | None, secret: str) -> bool:
    return await _off_loop(lambda: verify_client_secret(secret_hash, secret))


async def hash_password_off_loop(password: str) -> str:
    """:func:`hash_password` in the bounded hashing pool."""
    return await _off_loop(lambda: hash_password(password))
