from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.domain.budget import remaining_income_per_person_per_day
from api.problems import ValidationFailed


def test_single_person() -> None:
    # (1200 - 750) / 1 / 30 = 15.00
    assert remaining_income_per_person_per_day(Decimal("1200"), Decimal("750"), 1) == Decimal(
        "15.00"
    )


def test_amounts_by_type_and_rounding_half_up() -> None:
    resources = {"salaire": Decimal("1100.50"), "caf": Decimal("412.37")}
    charges = [Decimal("650"), Decimal("120.12")]
    # (1512.87 - 770.12) / 3 / 30 = 742.75 / 90 = 8.2527… → 8.25
    assert remaining_income_per_person_per_day(resources, charges, 3) == Decimal("8.25")
    # 0.125 / 1 / 1 → 0.13 (half up, not banker's 0.12)
    assert remaining_income_per_person_per_day(Decimal("0.125"), 0, 1, days_in_month=1) == Decimal(
        "0.13"
    )


def test_days_in_month() -> None:
    assert remaining_income_per_person_per_day(3100, 0, 2, days_in_month=31) == Decimal("50.00")


def test_negative_remaining_income_is_reported() -> None:
    assert remaining_income_per_person_per_day(Decimal("500"), Decimal("800"), 2) == Decimal(
        "-5.00"
    )


@pytest.mark.parametrize("size", [0, -1])
def test_household_size_at_least_one(size: int) -> None:
    with pytest.raises(ValidationFailed) as info:
        remaining_income_per_person_per_day(Decimal("1000"), Decimal("0"), size)
    assert [e.pointer for e in info.value.errors] == ["/household_size"]


def test_invalid_amounts_are_named() -> None:
    bad: Any = {"salaire": Decimal("-1"), "rsa": 1.5}
    with pytest.raises(ValidationFailed) as info:
        remaining_income_per_person_per_day(bad, [Decimal("NaN")], 1)
    assert [e.pointer for e in info.value.errors] == ["/resources/salaire", "/resources/rsa"]
    with pytest.raises(ValidationFailed) as info:
        remaining_income_per_person_per_day(Decimal(1), [Decimal("NaN")], 1)
    assert [e.pointer for e in info.value.errors] == ["/charges/0"]


def test_days_in_month_bounds() -> None:
    with pytest.raises(ValueError, match="days_in_month"):
        remaining_income_per_person_per_day(Decimal(1), Decimal(0), 1, days_in_month=0)


money = st.decimals(min_value=0, max_value=100_000, places=2)


@given(money, money, st.integers(min_value=1, max_value=15))
def test_result_is_the_rounded_exact_value(resources: Decimal, charges: Decimal, size: int) -> None:
    result = remaining_income_per_person_per_day(resources, charges, size)
    assert result.as_tuple().exponent == -2
    exact = (resources - charges) / size / 30
    assert abs(result - exact) <= Decimal("0.005")
    assert (result >= 0) == (resources >= charges) or result == 0
