"""An aid type of a règlement, as the pure rules read it: its ceilings, conditions and
decision tiers (who decides up to which amount)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from api.domain.aids.rules.codes import DecisionLevel
from api.problems import FieldError


@dataclass(frozen=True)
class Tier:
    up_to: Decimal | None
    by: DecisionLevel


def tier_errors(tiers: Sequence[Tier], pointer: str) -> list[FieldError]:
    """Tiers must be ordered by strictly increasing ``up_to`` with rising levels, the open
    tier (``up_to`` null) last: anything else overlaps or leaves an amount undecided."""
    errors: list[FieldError] = []
    if not tiers:
        return [FieldError(pointer, "Name at least one decision tier.")]
    for i, tier in enumerate(tiers):
        here = f"{pointer}/{i}"
        if tier.up_to is None and i != len(tiers) - 1:
            errors.append(FieldError(here, "Only the last tier may be open (up_to null)."))
        if i == 0:
            continue
        before = tiers[i - 1]
        if before.up_to is not None and tier.up_to is not None and tier.up_to <= before.up_to:
            errors.append(FieldError(here, "Tiers overlap: up_to must increase."))
        if tier.by < before.by:
            errors.append(FieldError(here, "A higher amount cannot need a lower level."))
    return errors


def required_level(tiers: Sequence[Tier], amount: Decimal) -> DecisionLevel:
    """The level the first tier covering ``amount`` names; above every bounded tier (and no
    open one) the commission decides."""
    for tier in tiers:
        if tier.up_to is None or amount <= tier.up_to:
            return tier.by
    return DecisionLevel.COMMISSION


@dataclass(frozen=True)
class AidTypeRule:
    """One aid type of a règlement, as assessment and comparison need it."""

    code: str
    category: str
    forms: frozenset[str]
    max_per_request: Decimal
    tiers: tuple[Tier, ...]
    max_per_household_12_months: Decimal | None = None
    max_requests_12_months: int | None = None
    reste_a_vivre_max: Decimal | None = None
    residence_months_min: int | None = None
    emergency_up_to: Decimal | None = None
    #: the règlement's all-types ceiling over 12 months
    rules_max_per_household_12_months: Decimal | None = None
