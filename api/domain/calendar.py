"""Working days: weekends and French (metropolitan) public holidays are not worked.

Referral response deadlines count working days (10 by default, domain.md §8). Alsace-Moselle's
two extra holidays (Good Friday, 26 December) are not applied: deadlines are one rule for all.
"""

from __future__ import annotations

from datetime import date, timedelta

import holidays

_FRENCH_HOLIDAYS = holidays.country_holidays("FR")  # metropolitan; years computed lazily
_ONE_DAY = timedelta(days=1)


def is_working_day(day: date) -> bool:
    return day.weekday() < 5 and day not in _FRENCH_HOLIDAYS


def add_working_days(start: date, days: int) -> date:
    """The date ``days`` working days after ``start`` (before it when negative).

    ``start`` itself is not counted, so a deadline of 1 working day from a Friday is the next
    Monday; ``days == 0`` returns ``start`` unchanged, even on a non-working day.
    """
    step = _ONE_DAY if days >= 0 else -_ONE_DAY
    current, remaining = start, abs(days)
    while remaining:
        current += step
        if is_working_day(current):
            remaining -= 1
    return current


def working_days_between(a: date, b: date) -> int:
    """Working days met walking from ``a`` to ``b``: the inverse of :func:`add_working_days`.

    Counts the working days in ``(a, b]``, or minus those in ``[b, a)`` when ``b < a``, so
    ``working_days_between(a, add_working_days(a, n)) == n`` for every ``n``.
    """
    step = _ONE_DAY if b >= a else -_ONE_DAY
    sign = 1 if b >= a else -1
    count, current = 0, a
    while current != b:
        current += step
        count += is_working_day(current)
    return sign * count
