"""A request against the rules of its aid type: the assessment made when it is submitted,
and the checks of a grant at decision time."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from api.domain.aids.rules.aid_types import AidTypeRule, required_level
from api.domain.aids.rules.codes import DecisionLevel


@dataclass(frozen=True)
class History:
    """The household's aids from this grantor over the last 12 months."""

    count: int = 0
    amount: Decimal = Decimal(0)
    #: of the same aid type
    same_type_count: int = 0
    same_type_amount: Decimal = Decimal(0)


@dataclass(frozen=True)
class Check:
    rule: str
    result: str  # pass | fail | warn
    detail: str


@dataclass(frozen=True)
class Assessment:
    reste_a_vivre: Decimal
    uc: Decimal
    checks: tuple[Check, ...]
    required_level: DecisionLevel
    history: History

    @property
    def failing(self) -> list[str]:
        return [c.rule for c in self.checks if c.result == "fail"]


def _ceiling_check(rule: str, spent: Decimal, asked: Decimal, limit: Decimal | None) -> Check:
    if limit is None:
        return Check(rule, "pass", "no ceiling")
    verdict = "pass" if spent + asked <= limit else "fail"
    return Check(rule, verdict, f"{spent} + {asked} against {limit}")


def assess(
    aid: AidTypeRule,
    *,
    amount: Decimal,
    form: str,
    reste: Decimal,
    uc: Decimal,
    history: History,
    residence_months: int | None,
) -> Assessment:
    """Each rule of the aid type against the request: pass, fail, or warn (not checkable
    here: the residence length is unknown)."""
    checks = [
        Check("form", "pass" if form in aid.forms else "fail", f"{form} in {sorted(aid.forms)}"),
        _ceiling_check("max_per_request", Decimal(0), amount, aid.max_per_request),
        _ceiling_check(
            "max_per_household_12_months",
            history.same_type_amount,
            amount,
            aid.max_per_household_12_months,
        ),
        _ceiling_check(
            "rules_max_per_household_12_months",
            history.amount,
            amount,
            aid.rules_max_per_household_12_months,
        ),
    ]
    if aid.max_requests_12_months is not None:
        ok = history.same_type_count + 1 <= aid.max_requests_12_months
        checks.append(
            Check(
                "max_requests_12_months",
                "pass" if ok else "fail",
                f"{history.same_type_count} + 1 against {aid.max_requests_12_months}",
            )
        )
    if aid.reste_a_vivre_max is not None:
        ok = reste <= aid.reste_a_vivre_max
        checks.append(
            Check(
                "reste_a_vivre_max",
                "pass" if ok else "fail",
                f"{reste} against {aid.reste_a_vivre_max}",
            )
        )
    if aid.residence_months_min is not None:
        if residence_months is None:
            checks.append(Check("residence_months_min", "warn", "residence length unknown"))
        else:
            ok = residence_months >= aid.residence_months_min
            checks.append(
                Check(
                    "residence_months_min",
                    "pass" if ok else "fail",
                    f"{residence_months} against {aid.residence_months_min}",
                )
            )
    return Assessment(
        reste_a_vivre=reste,
        uc=uc,
        checks=tuple(checks),
        required_level=required_level(aid.tiers, amount),
        history=history,
    )


@dataclass(frozen=True)
class GrantCheck:
    """What a grant of ``amount`` breaks: rules of the règlement (only a derogation lifts
    them) and whether the caller's level suffices."""

    breaches: list[str] = field(default_factory=list)
    level_ok: bool = True
    emergency: bool = False


def check_grant(
    aid: AidTypeRule,
    *,
    amount: Decimal,
    form: str,
    history: History,
    assessment_failures: Sequence[str],
    caller: DecisionLevel,
    at_commission: bool,
) -> GrantCheck:
    """Breaches of a grant of ``amount`` (re-checked at decision time: the ceilings move
    with what was granted since submission) and whether ``caller`` may take it. A decideur
    may grant at once up to ``emergency_up_to`` what would need the commission."""
    assessment = assess(
        aid,
        amount=amount,
        form=form,
        reste=Decimal(0),
        uc=Decimal(1),
        history=history,
        residence_months=None,
    )
    ceilings = [
        c.rule
        for c in assessment.checks
        if c.result == "fail" and c.rule not in ("reste_a_vivre_max", "residence_months_min")
    ]
    eligibility = [
        r for r in assessment_failures if r in ("reste_a_vivre_max", "residence_months_min")
    ]
    needed = required_level(aid.tiers, amount)
    level = DecisionLevel.COMMISSION if at_commission else caller
    emergency = False
    level_ok = level >= needed
    if not level_ok and caller >= DecisionLevel.DECIDEUR and aid.emergency_up_to is not None:
        emergency = amount <= aid.emergency_up_to
        level_ok = emergency
    return GrantCheck(breaches=[*ceilings, *eligibility], level_ok=level_ok, emergency=emergency)


def may_derogate(caller: DecisionLevel, at_commission: bool) -> bool:
    """A derogation is the decideur's or the commission's, never an agent's."""
    return at_commission or caller >= DecisionLevel.DECIDEUR
