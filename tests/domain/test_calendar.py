from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.domain.calendar import add_working_days, is_working_day, working_days_between


@pytest.mark.parametrize(
    "day",
    [
        date(2026, 1, 1),
        date(2026, 4, 6),  # lundi de Pâques
        date(2026, 5, 1),
        date(2026, 5, 8),
        date(2026, 5, 14),  # Ascension
        date(2026, 5, 25),  # lundi de Pentecôte
        date(2026, 7, 14),
        date(2026, 12, 25),
        date(2026, 5, 2),  # Saturday
        date(2026, 5, 3),  # Sunday
    ],
)
def test_non_working_days(day: date) -> None:
    assert not is_working_day(day)


@pytest.mark.parametrize(
    "day",
    [date(2026, 4, 3), date(2026, 12, 24), date(2026, 12, 28)],  # Good Friday, 26 Dec: Alsace only
)
def test_working_days(day: date) -> None:
    assert is_working_day(day)


def test_add_over_a_weekend() -> None:
    assert add_working_days(date(2026, 3, 6), 1) == date(2026, 3, 9)  # Fri → Mon
    assert add_working_days(date(2026, 3, 7), 1) == date(2026, 3, 9)  # Sat → Mon


def test_add_over_may_holidays() -> None:
    # Thu 30 April + 1: Fri 1 May is off → Mon 4 May
    assert add_working_days(date(2026, 4, 30), 1) == date(2026, 5, 4)
    # Wed 13 May + 1: Thu 14 (Ascension) off → Fri 15 May
    assert add_working_days(date(2026, 5, 13), 1) == date(2026, 5, 15)
    # default response deadline: 10 working days from Tue 28 April 2026
    # 29, 30 Apr, 4, 5, 6, 7, 11, 12, 13, 15 May (1, 8, 14 May off)
    assert add_working_days(date(2026, 4, 28), 10) == date(2026, 5, 15)


def test_add_over_christmas_and_new_year() -> None:
    # Thu 24 Dec 2026 + 1: Fri 25 off → Mon 28; + 5 → Fri 1 Jan 2027 off → Mon 4 Jan
    assert add_working_days(date(2026, 12, 24), 1) == date(2026, 12, 28)
    assert add_working_days(date(2026, 12, 24), 5) == date(2027, 1, 4)


def test_zero_and_negative() -> None:
    assert add_working_days(date(2026, 5, 1), 0) == date(2026, 5, 1)
    assert add_working_days(date(2026, 5, 4), -1) == date(2026, 4, 30)


def test_working_days_between() -> None:
    assert working_days_between(date(2026, 4, 28), date(2026, 5, 15)) == 10
    assert working_days_between(date(2026, 5, 15), date(2026, 4, 28)) == -10
    assert working_days_between(date(2026, 5, 1), date(2026, 5, 1)) == 0
    assert working_days_between(date(2026, 5, 8), date(2026, 5, 10)) == 0


dates = st.dates(min_value=date(2020, 1, 1), max_value=date(2035, 12, 31))


@given(dates, st.integers(min_value=-60, max_value=60))
def test_between_inverts_add(start: date, n: int) -> None:
    end = add_working_days(start, n)
    assert working_days_between(start, end) == n
    if n:
        assert is_working_day(end)
        assert abs((end - start).days) >= abs(n)


@given(dates, st.integers(min_value=0, max_value=40))
def test_add_is_monotonic(start: date, n: int) -> None:
    assert add_working_days(start, n) < add_working_days(start, n + 1)
    assert add_working_days(start + timedelta(days=1), n) >= add_working_days(start, n)
