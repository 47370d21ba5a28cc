"""The comparison of règlements: what an aid type would give a described household."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from api.domain.aids.rules.aid_types import AidTypeRule


@dataclass(frozen=True)
class Offer:
    """What one aid type would give a described household with no history: eligible or
    not, up to how much, and which rules stop it."""

    eligible: bool
    max_amount: Decimal
    failing_rules: tuple[str, ...]


def offer(aid: AidTypeRule, reste: Decimal) -> Offer:
    """The comparison's verdict: only the reste à vivre can fail for a household with no
    history (residence is not described); the ceiling is the lowest that applies."""
    failing = []
    if aid.reste_a_vivre_max is not None and reste > aid.reste_a_vivre_max:
        failing.append("reste_a_vivre_max")
    ceilings = [
        c
        for c in (
            aid.max_per_request,
            aid.max_per_household_12_months,
            aid.rules_max_per_household_12_months,
        )
        if c is not None
    ]
    ceiling = min(ceilings)
    return Offer(
        eligible=not failing,
        max_amount=ceiling if not failing else Decimal(0),
        failing_rules=tuple(failing),
    )
