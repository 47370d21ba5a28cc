"""Login throttling per account and per client IP (sliding windows, in process memory).

Two limits, checked before any password work:

* **per account**: at most ``max_account_failures`` failed logins in ``account_window``
  seconds (default 10 per 15 minutes). This bounds online guessing against one account from
  any number of IPs. It is a throttle, not a lockout: the account opens again as failures
  age out of the window, and a success clears the count. (An attacker can still keep a known
  e-mail throttled by failing on purpose; that is the price of stopping distributed guessing,
  and why the window is short.)
* **per IP**: at most ``max_ip_attempts`` attempts (successful or not) in ``ip_window``
  seconds (default 50 per minute). This bounds password spraying (one password, many
  accounts) and credential stuffing from one address, while leaving room for an office of
  agents behind one NAT address.

Concurrency: :meth:`LoginThrottle.check` *reserves* a slot for the account before the
(slow) password verification runs, and that reservation counts against the limit until
:meth:`~LoginThrottle.record_failure` turns it into a failure or
:meth:`~LoginThrottle.record_success` clears it. Otherwise a burst of parallel requests would
all pass ``check`` before the first failure is recorded. A reservation never resolved (the
request crashed) expires after ``pending_timeout`` seconds.

Limits of this first version
    State lives in this process: with several workers each one counts separately, so the
    effective limit is multiplied by the number of workers, and a restart forgets everything.
    Acceptable as a first line of defence; the database (or a shared cache) can hold the
    counters later behind the same interface. Memory is bounded: timestamps older than their
    window are pruned, each key holds at most its limit of timestamps, and at most
    ``max_keys`` keys per table are kept (the oldest-touched are dropped first, which under a
    flood of distinct keys forgets some counters rather than exhausting memory).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from api.problems import TooManyRequests

__all__ = ["LoginThrottle"]

_SWEEP_EVERY = 1024


@dataclass
class _Account:
    failures: deque[float] = field(default_factory=deque)
    pending: deque[float] = field(default_factory=deque)


class LoginThrottle:
    """Sliding-window login limiter; see the module docstring for the contract."""

    def __init__(
        self,
        *,
        max_account_failures: int = 10,
        account_window: float = 15 * 60,
        max_ip_attempts: int = 50,
        ip_window: float = 60,
        pending_timeout: float = 60,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if min(max_account_failures, max_ip_attempts, max_keys) < 1:
            raise ValueError("limits must be at least 1")
        if min(account_window, ip_window, pending_timeout) <= 0:
            raise ValueError("windows must be positive")
        self.max_account_failures = max_account_failures
        self.account_window = account_window
        self.max_ip_attempts = max_ip_attempts
        self.ip_window = ip_window
        self.pending_timeout = pending_timeout
        self.max_keys = max_keys
        self._clock = clock
        self._accounts: dict[str, _Account] = {}
        self._ips: dict[str, deque[float]] = {}
        self._operations = 0

    def check(self, account_key: str, ip: str) -> None:
        """Admit one login attempt or raise :class:`TooManyRequests` with ``Retry-After``.

        When admitted, the attempt counts against the IP's window and holds a pending slot on
        the account until :meth:`record_failure` or :meth:`record_success`. A refused attempt
        counts nowhere. ``account_key`` should be normalised by the caller (e.g. the
        lower-cased e-mail or client id), unknown accounts included, so that throttling does
        not reveal whether an account exists.
        """
        now = self._clock()
        self._maybe_sweep(now)
        account = self._account(account_key, now)
        attempts = self._ip(ip, now)

        waits: list[float] = []
        if len(account.failures) + len(account.pending) >= self.max_account_failures:
            # Free once enough failures age out / reservations resolve or expire.
            waits.append(self._account_wait(account, now))
        if len(attempts) >= self.max_ip_attempts:
            waits.append(attempts[len(attempts) - self.max_ip_attempts] + self.ip_window - now)
        if waits:
            seconds = max(1, math.ceil(max(waits)))
            raise TooManyRequests(
                detail="Too many login attempts; retry later",
                headers={"Retry-After": str(seconds)},
            )
        attempts.append(now)
        account.pending.append(now)

    def record_failure(self, account_key: str, ip: str) -> None:
        """Record a failed login: the account's pending slot becomes a failure.

        ``ip`` is accepted for symmetry and future shared storage; the IP's attempt was
        already counted by :meth:`check`.
        """
        del ip
        now = self._clock()
        account = self._account(account_key, now)
        if account.pending:
            account.pending.popleft()
        account.failures.append(now)
        while len(account.failures) > self.max_account_failures:
            account.failures.popleft()  # more than the limit carries no extra information

    def record_success(self, account_key: str) -> None:
        """A successful login clears the account's failures and reservations."""
        self._accounts.pop(account_key, None)

    # ------------------------------------------------------------------ internals

    def _account_wait(self, account: _Account, now: float) -> float:
        """Seconds until failures + pending drop below the limit (pending: until expiry)."""
        expiries = sorted(
            [t + self.account_window for t in account.failures]
            + [t + self.pending_timeout for t in account.pending]
        )
        excess = len(expiries) - self.max_account_failures
        return expiries[excess] - now

    def _account(self, key: str, now: float) -> _Account:
        account = self._accounts.pop(key, None) or _Account()
        self._accounts[key] = account  # re-insert: dict order = least recently touched first
        _prune(account.failures, now - self.account_window)
        _prune(account.pending, now - self.pending_timeout)
        self._evict(self._accounts)
        return account

    def _ip(self, key: str, now: float) -> deque[float]:
        attempts = self._ips.pop(key, None) or deque()
        self._ips[key] = attempts
        _prune(attempts, now - self.ip_window)
        while len(attempts) > self.max_ip_attempts:
            attempts.popleft()
        self._evict(self._ips)
        return attempts

    def _evict(self, table: dict[str, _Account] | dict[str, deque[float]]) -> None:
        while len(table) > self.max_keys:
            del table[next(iter(table))]

    def _maybe_sweep(self, now: float) -> None:
        self._operations += 1
        if self._operations % _SWEEP_EVERY == 0:
            self._sweep(now)

    def sweep(self) -> None:
        """Drop every key whose windows are empty (also done every 1024 checks)."""
        self._sweep(self._clock())

    def _sweep(self, now: float) -> None:
        for key in list(self._accounts):
            account = self._accounts[key]
            _prune(account.failures, now - self.account_window)
            _prune(account.pending, now - self.pending_timeout)
            if not account.failures and not account.pending:
                del self._accounts[key]
        for key in list(self._ips):
            _prune(self._ips[key], now - self.ip_window)
            if not self._ips[key]:
                del self._ips[key]

    def tracked_keys(self) -> int:
        """How many accounts and IPs are tracked (for tests and metrics)."""
        return len(self._accounts) + len(self._ips)


def _prune(timestamps: deque[float], horizon: float) -> None:
    """Drop timestamps at or before ``horizon`` (appended in clock order, oldest first)."""
    while timestamps and timestamps[0] <= horizon:
        timestamps.popleft()
