"""Login throttling per account and per client address, shared by every worker (PostgreSQL).

Two limits, checked before any password work:

* **per account**: at most ``max_account_failures`` failed logins in ``account_window``
  seconds (default 10 per 15 minutes). This bounds online guessing against one account from
  any number of addresses. It is a throttle, not a lockout: the account opens again as
  failures age out of the window, and a success clears the count. (An attacker can still keep
  a known e-mail throttled by failing on purpose; that is the price of stopping distributed
  guessing, and why the window is short.)
* **per address**: at most ``max_ip_attempts`` attempts (successful or not) in ``ip_window``
  seconds (default 50 per minute). This bounds password spraying and credential stuffing from
  one address, while leaving room for an office of agents behind one NAT address.

Concurrency: :meth:`LoginThrottle.check` *reserves* a slot for the account before the (slow)
password verification runs, and that reservation counts against the limit until
:meth:`~LoginThrottle.record_failure` turns it into a failure or
:meth:`~LoginThrottle.record_success` clears it; otherwise a burst of parallel requests would
all pass the check before the first failure is recorded. A reservation never resolved (the
process died) expires after ``pending_timeout`` seconds.

Shared state: the counters live in PostgreSQL (``login_attempt``, migration 0018), so N
workers allow what one allows, and a restart forgets nothing. Why not Redis: the service runs
with Python and its database only. Accounts and addresses are stored as keyed hashes.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from api.auth.login_attempts import LoginAttempts, LoginLimits
from api.problems import TooManyRequests

__all__ = ["Admission", "LoginLimits", "LoginThrottle"]


@dataclass(frozen=True)
class Admission:
    """An admitted attempt: the account's subject and its reservation."""

    account: bytes
    pending_id: int | None


class LoginThrottle:
    """Sliding-window login limiter; see the module docstring for the contract.

    ``engine_of`` gives the runtime role's engine when called (it exists once the app has
    started); ``key`` keys the hashes that stand for accounts and addresses."""

    def __init__(
        self,
        engine_of: Callable[[], AsyncEngine],
        key: bytes,
        limits: LoginLimits | None = None,
    ) -> None:
        self.limits = limits or LoginLimits()
        if min(self.limits.max_account_failures, self.limits.max_ip_attempts) < 1:
            raise ValueError("limits must be at least 1")
        self._engine_of = engine_of
        self._key = key

    def _subject(self, kind: str, value: str) -> bytes:
        return hmac.digest(self._key, f"{kind}\x1f{value}".encode(), hashlib.sha256)

    def _store(self) -> LoginAttempts:
        return LoginAttempts(self._engine_of(), self.limits)

    async def check(self, account_key: str, ip: str) -> Admission:
        """Admit one login attempt or raise :class:`TooManyRequests` with ``Retry-After``.

        ``account_key`` should be normalised by the caller (the lower-cased e-mail or the
        client id), unknown accounts included, so that throttling does not reveal whether an
        account exists. A refused attempt counts nowhere."""
        account = self._subject("account", account_key)
        pending_id, wait = await self._store().admit(account, self._subject("ip", ip))
        if wait:
            raise TooManyRequests(
                detail="Too many login attempts; retry later",
                headers={"Retry-After": str(wait)},
            )
        return Admission(account, pending_id)

    async def record_failure(self, admission: Admission) -> None:
        """The reservation becomes a failure of the account."""
        await self._store().failed(admission.pending_id, admission.account)

    async def record_success(self, admission: Admission) -> None:
        """A successful login clears the account's failures and reservations."""
        await self._store().succeeded(admission.account)
