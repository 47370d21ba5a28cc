"""Pure rules of webhooks and of the change feed: retry schedule, event patterns, message
shape, resume positions."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from api.domain.changes.rules import END_OF_TRANSACTION, next_position
from api.domain.webhooks.rules import (
    EVENT_TYPES,
    MAX_DELAY,
    RETRY_WINDOW,
    event_patterns_errors,
    gives_up,
    matches,
    message_body,
    parse_endpoint,
    retry_delay,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@given(st.lists(st.floats(-1, 1), min_size=60, max_size=60))
def test_a_failing_message_is_retried_for_at_least_a_day_then_given_up(
    jitters: list[float],
) -> None:
    at, attempt = T0, 1  # the first attempt as soon as queued
    while not gives_up(T0, at):
        delay = retry_delay(attempt, jitters[attempt % len(jitters)])
        assert timedelta(seconds=24) <= delay <= MAX_DELAY * 1.2
        at, attempt = at + delay, attempt + 1
    # the last attempt was made a day or more after the message was queued, not much later
    assert RETRY_WINDOW <= at - T0 <= RETRY_WINDOW + MAX_DELAY * 1.2
    assert 12 <= attempt <= 20


def test_delays_double_from_thirty_seconds_up_to_six_hours() -> None:
    delays = [retry_delay(n, 0) for n in range(1, 15)]
    assert delays[:4] == [timedelta(seconds=s) for s in (30, 60, 120, 240)]
    assert delays == sorted(delays) and delays[-1] == timedelta(hours=6)
    assert retry_delay(10_000, 0) == timedelta(hours=6)


@given(st.sampled_from(sorted(EVENT_TYPES)), st.sampled_from(sorted(EVENT_TYPES)))
def test_patterns_name_exact_types_families_or_everything(event: str, other: str) -> None:
    family = event.split(".")[0]
    assert matches("*", event) and matches(event, event) and matches(f"{family}.*", event)
    assert matches(other, event) == (other == event)
    assert matches(f"{other.split('.')[0]}.*", event) == (other.split(".")[0] == family)
    assert event_patterns_errors([event, f"{family}.*", "*"]) == []


def test_unknown_patterns_are_named() -> None:
    errors = event_patterns_errors(["referral.*", "referral.sent", "*.created", "*"])
    assert [e.pointer for e in errors] == ["/events/1", "/events/2"]
    assert [e.pointer for e in event_patterns_errors([])] == ["/events"]


def test_messages_carry_ids_only() -> None:
    body = json.loads(message_body("referral.status_changed", T0, "abc", "accepted"))
    assert body == {
        "type": "referral.status_changed",
        "timestamp": "2026-03-02T09:00:00.000000Z",
        "data": {"id": "abc", "status": "accepted"},
    }
    assert json.loads(message_body("webhook.test", T0, "abc", None))["data"] == {"id": "abc"}


def test_endpoint_forms() -> None:
    ok = parse_endpoint("https://Hooks.Example.org:8443/in?x=1", allow_private=False)
    assert not hasattr(ok, "pointer")
    assert ok.host == "hooks.example.org" and ok.port == 8443  # type: ignore[union-attr]
    assert ok.host_header == "hooks.example.org:8443"  # type: ignore[union-attr]
    local = parse_endpoint("http://[::1]:8080/in", allow_private=True)
    assert local.host_header == "[::1]:8080"  # type: ignore[union-attr]
    for url in ("http://example.org/", "https:///x", "https://a b/", "https://u@example.org/"):
        assert getattr(parse_endpoint(url, allow_private=False), "pointer", None) == "/url"


positions = st.tuples(st.integers(0, 10**6), st.integers(0, 10**6))


@given(st.one_of(st.none(), positions), st.one_of(st.none(), positions), st.integers(1, 10**6))
def test_a_reader_never_goes_back(
    after: tuple[int, int] | None, last: tuple[int, int] | None, horizon: int
) -> None:
    if last is not None and after is not None and last <= after:
        last = None  # what was served comes after where the read started
    if last is not None and last[0] >= horizon:
        last = (horizon - 1, last[1])  # nothing at or above the horizon is served
    full = next_position(after, last, horizon, full=True)
    assert full == last
    caught_up = next_position(after, last, horizon, full=False)
    assert caught_up is not None
    for earlier in (after, last):
        if earlier is not None:
            assert caught_up >= earlier
    # a caught-up reader resumes past every transaction below the horizon, none above it
    assert caught_up >= (horizon - 1, END_OF_TRANSACTION) or (
        after is not None and caught_up == after
    )
    assert (horizon, 0) > caught_up or (after is not None and caught_up == after)
