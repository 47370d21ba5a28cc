"""Decisions on legal-aid dossiers (domain.md §4 "Decisions stay with the law"): their values
and what makes one valid. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Any

from api.problems import FieldError


class Decision(StrEnum):
    GRANTED = "granted"
    REJECTED = "rejected"
    ADJOURNED = "adjourned"


@dataclass(frozen=True)
class DecisionValues:
    decision: Decision
    amount: Decimal | None = None
    start_on: date | None = None
    end_on: date | None = None
    reason: str | None = None
    decided_on: date | None = None

    def columns(self) -> dict[str, Any]:
        return {
            "decision": str(self.decision),
            "amount": self.amount,
            "start_on": self.start_on,
            "end_on": self.end_on,
            "decision_reason": self.reason,
            "decided_on": self.decided_on,
        }


def check_decision(values: DecisionValues, prefix: str = "") -> list[FieldError]:
    """A refusal or an adjournment states its reason and grants nothing; a period ends after
    it starts; an amount is never negative."""
    errors = []
    if values.decision in (Decision.REJECTED, Decision.ADJOURNED):
        if not (values.reason or "").strip():
            errors.append(
                FieldError(f"{prefix}/reason", f"A {values.decision} decision states its reason.")
            )
        for name in ("amount", "start_on", "end_on"):
            if getattr(values, name) is not None:
                errors.append(
                    FieldError(f"{prefix}/{name}", f"A {values.decision} decision grants nothing.")
                )
    if values.amount is not None and values.amount < 0:
        errors.append(FieldError(f"{prefix}/amount", "An amount is never negative."))
    if values.start_on and values.end_on and values.end_on < values.start_on:
        errors.append(FieldError(f"{prefix}/end_on", "The period ends before it starts."))
    return errors
