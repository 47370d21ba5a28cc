"""Reste à vivre per day per consumption unit = (monthly resources − monthly charges) / 30 / UC,
UC on the INSEE/OECD-modified scale: 1 for the first person, 0.5 per other person aged 14 or
more, 0.3 per child under 14. Amounts are exact decimals, rounded to the cent half-up.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal

from api.domain.aids.rules.codes import CENT

DAYS_IN_MONTH = 30
ADULT_AGE = 14


def consumption_units(adults: int, children_ages: Iterable[int] = ()) -> Decimal:
    """UC of a household on the INSEE/OECD-modified scale. ``adults`` are people aged 14 or
    more; ``children_ages`` may hold ages of 14 or more too (counted as adults). With no
    adult, the oldest child counts as the first person."""
    ages = sorted(children_ages, reverse=True)
    if adults < 0 or any(a < 0 for a in ages):
        raise ValueError("a household cannot hold a negative number of people or ages")
    others = [Decimal("0.5") if a >= ADULT_AGE else Decimal("0.3") for a in ages]
    if adults >= 1:
        return Decimal(1) + Decimal("0.5") * (adults - 1) + sum(others, Decimal(0))
    if not others:
        raise ValueError("a household holds at least one person")
    return Decimal(1) + sum(others[1:], Decimal(0))


def reste_a_vivre(resources: Decimal, charges: Decimal, uc: Decimal) -> Decimal:
    """Euros per day per consumption unit, rounded to the cent (negative when charges exceed
    resources: information, not an error)."""
    if uc <= 0:
        raise ValueError("consumption units must be positive")
    return ((resources - charges) / DAYS_IN_MONTH / uc).quantize(CENT, rounding=ROUND_HALF_UP)
