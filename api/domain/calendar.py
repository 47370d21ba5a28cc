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
    """Working days in ``(a, b]``, negated when ``b < a``: the inverse of add_working_days.

    ``working_days_between(a, add_working_days(a, n)) == n`` for every ``n``.
    """
    if b < a:
        return -working_days_between(b, a)
    count, current = 0, a
    while current < b:
        current += _ONE_DAY
        count += is_working_day(current)
    return count
