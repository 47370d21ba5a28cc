"""Reste à vivre: what a household has left per person per day after its fixed charges.

``(monthly resources - monthly charges) / household size / days in month``, in exact decimal
arithmetic, rounded to the cent half-up (the usual rule of French administrative amounts).
The result may be negative (charges above resources): that is information, not an error.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import ROUND_HALF_UP, Decimal

from api.problems import FieldError, ValidationFailed

Amounts = Decimal | int | Mapping[str, Decimal | int] | Iterable[Decimal | int]
"""One monthly amount, amounts by type (``{"salaire": Decimal("1200")}``), or a list."""

CENT = Decimal("0.01")


def _total(amounts: Amounts, pointer: str) -> Decimal:
    if isinstance(amounts, Mapping):
        items: list[tuple[str, object]] = [(str(k), v) for k, v in amounts.items()]
    elif isinstance(amounts, Decimal | int):
        return _total([amounts], pointer)
    else:
        items = [(str(i), v) for i, v in enumerate(amounts)]
    errors: list[FieldError] = []
    total = Decimal(0)
    for key, value in items:
        # bool is an int and float is inexact: both are refused.
        if isinstance(value, bool) or not isinstance(value, Decimal | int):
            errors.append(FieldError(f"{pointer}/{key}", "An amount must be a decimal number."))
        elif not Decimal(value).is_finite() or value < 0:
            errors.append(FieldError(f"{pointer}/{key}", "An amount must be zero or positive."))
        else:
            total += Decimal(value)
    if errors:
        raise ValidationFailed(detail="Invalid amounts.", errors=errors)
    return total


def remaining_income_per_person_per_day(
    resources: Amounts, charges: Amounts, household_size: int, days_in_month: int = 30
) -> Decimal:
    """Reste à vivre per person per day, in euros rounded to the cent (see module docstring)."""
    if household_size < 1:
        raise ValidationFailed(
            detail="A household has at least one person.",
            errors=[FieldError("/household_size", "A household has at least one person.")],
        )
    if not 1 <= days_in_month <= 31:
        raise ValueError("days_in_month must be between 1 and 31")
    remaining = _total(resources, "/resources") - _total(charges, "/charges")
    return (remaining / household_size / days_in_month).quantize(CENT, rounding=ROUND_HALF_UP)
