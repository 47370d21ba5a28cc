"""Login throttling: windows, Retry-After, reservations, memory, and window properties."""

from __future__ import annotations

from collections import defaultdict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.auth.throttle import LoginThrottle
from api.problems import TooManyRequests


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def refused(throttle: LoginThrottle, account: str, ip: str) -> int:
    """The Retry-After of a refused check (fails the test when the check is admitted)."""
    with pytest.raises(TooManyRequests) as caught:
        throttle.check(account, ip)
    assert caught.value.status == 429
    return int(caught.value.headers["Retry-After"])


def fail(throttle: LoginThrottle, account: str, ip: str) -> None:
    throttle.check(account, ip)
    throttle.record_failure(account, ip)


def test_account_is_throttled_after_ten_failures_in_fifteen_minutes() -> None:
    clock = FakeClock()
    throttle = LoginThrottle(clock=clock)
    for i in range(10):
        fail(throttle, "alice@example.org", f"10.0.0.{i}")  # distributed: IPs do not matter
        clock.advance(10)
    # failures at 1000..1090, now 1100: the oldest leaves the window at 1900
    assert refused(throttle, "alice@example.org", "10.9.9.9") == 800
    throttle.check("bob@example.org", "10.9.9.9")  # other accounts unaffected

    clock.advance(799)
    assert refused(throttle, "alice@example.org", "10.9.9.9") == 1
    clock.advance(1)
    throttle.check("alice@example.org", "10.9.9.9")


def test_success_clears_the_account() -> None:
    clock = FakeClock()
    throttle = LoginThrottle(max_account_failures=3, clock=clock)
    for _ in range(2):
        fail(throttle, "a", "ip")
    throttle.check("a", "ip")
    throttle.record_success("a")
    for _ in range(3):
        fail(throttle, "a", "ip")
    refused(throttle, "a", "ip")


def test_refused_attempts_do_not_extend_the_wait() -> None:
    clock = FakeClock()
    throttle = LoginThrottle(max_account_failures=2, account_window=100, clock=clock)
    fail(throttle, "a", "ip")
    fail(throttle, "a", "ip")
    for _ in range(20):
        refused(throttle, "a", "ip")
        clock.advance(1)
    assert refused(throttle, "a", "ip") == 80


def test_ip_is_limited_to_fifty_attempts_per_minute_across_accounts() -> None:
    clock = FakeClock()
    throttle = LoginThrottle(clock=clock)
    for i in range(50):
        throttle.check(f"user{i}@example.org", "203.0.113.7")
        throttle.record_success(f"user{i}@example.org")  # successes count too
        clock.advance(0.5)
    assert refused(throttle, "fresh@example.org", "203.0.113.7") == 35  # 1000 + 60 - 1025
    throttle.check("fresh@example.org", "203.0.113.8")  # another address is unaffected
    clock.advance(35)
    throttle.check("fresh@example.org", "203.0.113.7")


def test_parallel_attempts_reserve_slots_before_their_outcome_is_known() -> None:
    clock = FakeClock()
    throttle = LoginThrottle(max_account_failures=3, pending_timeout=30, clock=clock)
    for _ in range(3):
        throttle.check("a", "ip")  # three requests in flight, none resolved yet
    assert refused(throttle, "a", "ip") == 30
    throttle.record_failure("a", "ip")
    assert refused(throttle, "a", "ip") == 30
    clock.advance(30)  # the two unresolved reservations expire (crashed requests)
    throttle.check("a", "ip")


def test_memory_is_bounded() -> None:
    clock = FakeClock()
    throttle = LoginThrottle(max_keys=100, clock=clock)
    for i in range(1000):
        fail(throttle, f"user{i}", f"ip{i}")
    assert throttle.tracked_keys() <= 200
    clock.advance(3600)
    throttle.sweep()
    assert throttle.tracked_keys() == 0


def test_expired_keys_are_swept_automatically() -> None:
    clock = FakeClock()
    throttle = LoginThrottle(clock=clock)
    for i in range(600):
        fail(throttle, f"user{i}", "ip")
        clock.advance(1.3)  # stay under the IP limit
    assert throttle.tracked_keys() == 601
    clock.advance(3600)
    for i in range(1024 - 600):  # the 1024th check sweeps
        throttle.check("a", f"ip{i % 2}")
        throttle.record_success("a")
        clock.advance(2)
    assert throttle.tracked_keys() <= 2


def test_constructor_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        LoginThrottle(max_account_failures=0)
    with pytest.raises(ValueError):
        LoginThrottle(ip_window=0)


# --------------------------------------------------------------------------- properties

N, W = 4, 100.0
M, IW = 6, 10.0

operations = st.lists(
    st.tuples(
        st.sampled_from(["fail", "success", "burst"]),
        st.integers(0, 2),  # account
        st.integers(0, 2),  # ip
        st.floats(0, 40, allow_nan=False),  # time before the operation
        st.integers(1, 6),  # burst size
    ),
    max_size=120,
)


def max_in_window(times: list[float], width: float) -> int:
    """The most timestamps inside any half-open window (t - width, t]."""
    return max((sum(1 for u in times if t - width < u <= t) for t in times), default=0)


@settings(max_examples=300, database=None, deadline=None)
@given(operations)
def test_never_more_than_n_failures_or_m_attempts_in_any_window(
    ops: list[tuple[str, int, int, float, int]],
) -> None:
    clock = FakeClock()
    throttle = LoginThrottle(
        max_account_failures=N,
        account_window=W,
        max_ip_attempts=M,
        ip_window=IW,
        pending_timeout=W,
        clock=clock,
    )
    failures: dict[int, list[float]] = defaultdict(list)  # since the last success
    attempts: dict[int, list[float]] = defaultdict(list)
    for kind, account, ip, wait, size in ops:
        clock.advance(wait)
        admitted = 0
        for _ in range(size if kind == "burst" else 1):  # a burst: parallel checks first
            try:
                throttle.check(f"acct{account}", f"ip{ip}")
            except TooManyRequests as exc:
                assert int(exc.headers["Retry-After"]) >= 1
                continue
            admitted += 1
            attempts[ip].append(clock())
        for _ in range(admitted):
            if kind == "success":
                throttle.record_success(f"acct{account}")
                failures[account].clear()
            else:
                throttle.record_failure(f"acct{account}", f"ip{ip}")
                failures[account].append(clock())
    for times in failures.values():
        assert max_in_window(times, W) <= N
    for times in attempts.values():
        assert max_in_window(times, IW) <= M


@settings(max_examples=200, database=None, deadline=None)
@given(
    st.lists(st.integers(0, 60), min_size=1, max_size=30),
    st.integers(0, 1),
)
def test_retry_after_is_exact_to_the_second(gaps: list[int], ip_variant: int) -> None:
    """After a refusal, waiting Retry-After seconds admits; one second less does not."""
    clock = FakeClock()
    throttle = LoginThrottle(
        max_account_failures=N, account_window=W, max_ip_attempts=M, ip_window=IW, clock=clock
    )
    for gap in gaps:
        clock.advance(gap)
        ip = f"ip{ip_variant}"
        try:
            throttle.check("acct", ip)
        except TooManyRequests as exc:
            retry_after = int(exc.headers["Retry-After"])
            if retry_after > 1:
                clock.advance(retry_after - 1)
                with pytest.raises(TooManyRequests):
                    throttle.check("acct", ip)
                clock.advance(1)
            else:
                clock.advance(retry_after)
            throttle.check("acct", ip)
        throttle.record_failure("acct", ip)
