"""Aides facultatives (domain.md §10): règlements, assessment, decisions, envelopes. Pure.

Lifecycle of an aid request, as data (:data:`TRANSITIONS`): each action names the statuses it
leaves, the status it reaches and the side that takes it (the *instructor* prepares, the
*grantor* decides; an organisation instructing its own requests holds both sides).

===============  ===========================  ==============  ==========
action           from                         to              side
===============  ===========================  ==============  ==========
``submit``       ``draft``, ``adjourned``     ``submitted``   instructor
``schedule``     ``submitted``                ``scheduled``   grantor
``grant``        ``submitted``, ``scheduled`` ``granted``     grantor
``refuse``       ``submitted``, ``scheduled`` ``refused``     grantor
``adjourn``      ``submitted``, ``scheduled`` ``adjourned``   grantor
``cancel``       ``draft``, ``submitted``     ``cancelled``   instructor
``pay``          ``granted``                  ``paid``        grantor (payments only)
===============  ===========================  ==============  ==========

Errors, in this order: an action not allowed from the status → :class:`InvalidTransition`
(409 with ``allowed_actions``); allowed but reserved to the other side → 403.

Reste à vivre per day per consumption unit = (monthly resources − monthly charges) / 30 / UC,
UC on the INSEE/OECD-modified scale: 1 for the first person, 0.5 per other person aged 14 or
more, 0.3 per child under 14. Amounts are exact decimals, rounded to the cent half-up.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from enum import IntEnum, StrEnum

from api.problems import FieldError, Forbidden, InvalidTransition

CENT = Decimal("0.01")
DAYS_IN_MONTH = 30
ADULT_AGE = 14
#: no aid, ceiling or envelope is worth more than this (a typo guard, not a policy)
MAX_AMOUNT = Decimal("1000000")


class AidCompetence(StrEnum):
    AIDE_FACULTATIVE = "aide_facultative"
    AIDE_ALIMENTAIRE = "aide_alimentaire"


class AidCategory(StrEnum):
    ALIMENTATION = "alimentation"
    ENERGIE = "energie"
    EAU = "eau"
    LOGEMENT = "logement"
    TRANSPORT = "transport"
    SANTE = "sante"
    SCOLARITE = "scolarite"
    ENFANCE = "enfance"
    INSERTION = "insertion"
    OBSEQUES = "obseques"
    AUTRE = "autre"


class AidForm(StrEnum):
    BON = "bon"
    CHEQUE_ACCOMPAGNEMENT = "cheque_accompagnement"
    PAIEMENT_TIERS = "paiement_tiers"
    NATURE = "nature"
    NUMERAIRE = "numeraire"
    EXONERATION = "exoneration"
    PRET = "pret"


#: forms whose payments carry a voucher number (gap-free per grantor and year)
VOUCHER_FORMS = frozenset({AidForm.BON, AidForm.CHEQUE_ACCOMPAGNEMENT})


class DecisionLevel(IntEnum):
    """Who may decide, in increasing order: a higher level may decide what a lower may."""

    AGENT = 1
    DECIDEUR = 2
    COMMISSION = 3

    @property
    def code(self) -> str:
        return self.name.lower()

    @classmethod
    def of(cls, code: str) -> DecisionLevel:
        return cls[code.upper()]


class AidStatus(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    SCHEDULED = "scheduled"
    GRANTED = "granted"
    REFUSED = "refused"
    ADJOURNED = "adjourned"
    CANCELLED = "cancelled"
    PAID = "paid"


class AidAction(StrEnum):
    SUBMIT = "submit"
    SCHEDULE = "schedule"
    GRANT = "grant"
    REFUSE = "refuse"
    ADJOURN = "adjourn"
    CANCEL = "cancel"
    PAY = "pay"


class Side(StrEnum):
    INSTRUCTOR = "instructor"
    GRANTOR = "grantor"


class RefusalReason(StrEnum):
    HORS_REGLEMENT = "hors_reglement"
    RESSOURCES_SUFFISANTES = "ressources_suffisantes"
    PLAFOND_ATTEINT = "plafond_atteint"
    DOSSIER_INCOMPLET = "dossier_incomplet"
    AUTRE_DISPOSITIF = "autre_dispositif"
    AUTRE = "autre"


@dataclass(frozen=True)
class Transition:
    sources: frozenset[AidStatus]
    target: AidStatus
    side: Side


_S = AidStatus
_OPEN_DECISION = frozenset({_S.SUBMITTED, _S.SCHEDULED})

TRANSITIONS: Mapping[AidAction, Transition] = {
    AidAction.SUBMIT: Transition(
        frozenset({_S.DRAFT, _S.ADJOURNED}), _S.SUBMITTED, Side.INSTRUCTOR
    ),
    AidAction.SCHEDULE: Transition(frozenset({_S.SUBMITTED}), _S.SCHEDULED, Side.GRANTOR),
    AidAction.GRANT: Transition(_OPEN_DECISION, _S.GRANTED, Side.GRANTOR),
    AidAction.REFUSE: Transition(_OPEN_DECISION, _S.REFUSED, Side.GRANTOR),
    AidAction.ADJOURN: Transition(_OPEN_DECISION, _S.ADJOURNED, Side.GRANTOR),
    AidAction.CANCEL: Transition(
        frozenset({_S.DRAFT, _S.SUBMITTED}), _S.CANCELLED, Side.INSTRUCTOR
    ),
    AidAction.PAY: Transition(frozenset({_S.GRANTED}), _S.PAID, Side.GRANTOR),
}

TERMINAL = frozenset({_S.REFUSED, _S.CANCELLED, _S.PAID})
#: the statuses whose amount counts as granted (committed) against ceilings and envelopes
GRANTED_STATUSES = frozenset({_S.GRANTED, _S.PAID})
#: actions that go through their own endpoint (payments), never the lifecycle one
_ACTIONS_BY_PAYMENT = frozenset({AidAction.PAY})


def sides_of(organisation: object, instructor: object, grantor: object) -> frozenset[Side]:
    sides = set()
    if organisation == instructor:
        sides.add(Side.INSTRUCTOR)
    if organisation == grantor:
        sides.add(Side.GRANTOR)
    return frozenset(sides)


def allowed_actions(status: AidStatus, sides: frozenset[Side]) -> list[AidAction]:
    """Lifecycle actions open from ``status`` to an organisation holding ``sides``."""
    return [
        action
        for action, t in TRANSITIONS.items()
        if status in t.sources and t.side in sides and action not in _ACTIONS_BY_PAYMENT
    ]


def apply_action(status: AidStatus, action: AidAction, sides: frozenset[Side]) -> AidStatus:
    """The status ``action`` leads to, or the problem: 409 when the status does not allow it
    (whoever asks), 403 when it belongs to the other side."""
    transition = TRANSITIONS[action]
    if status not in transition.sources:
        raise InvalidTransition(
            detail=f"{action} is not allowed on a {status} aid request.",
            extra={"allowed_actions": [str(a) for a in allowed_actions(status, sides)]},
        )
    if transition.side not in sides:
        raise Forbidden(detail=f"Only the {transition.side} of the request may {action} it.")
    return transition.target


# reste à vivre ------------------------------------------------------------------------------


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


# règlements ---------------------------------------------------------------------------------


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


# decisions ----------------------------------------------------------------------------------


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


# envelopes ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class EnvelopeKey:
    """An envelope item: one aid type, one category, or the year's whole budget (neither)."""

    category: str | None = None
    aid_code: str | None = None


def envelope_for(keys: Iterable[EnvelopeKey], aid_code: str, category: str) -> EnvelopeKey | None:
    """The envelope a request draws on: its aid type's, else its category's, else the
    year's whole budget, else none."""
    present = set(keys)
    for key in (EnvelopeKey(aid_code=aid_code), EnvelopeKey(category=category), EnvelopeKey()):
        if key in present:
            return key
    return None


@dataclass(frozen=True)
class EnvelopeFigures:
    amount: Decimal
    granted: Decimal
    paid: Decimal

    @property
    def remaining(self) -> Decimal:
        return self.amount - self.granted


@dataclass(frozen=True)
class RequestMoney:
    """A granted request's money: what was granted, paid (live payments) and cancelled."""

    granted: Decimal
    paid: Decimal = Decimal(0)
    cancelled: Decimal = Decimal(0)

    @property
    def committed(self) -> Decimal:
        """A cancelled voucher returns to the envelope: it is no longer committed."""
        return self.granted - self.cancelled

    @property
    def outstanding(self) -> Decimal:
        return self.granted - self.paid - self.cancelled


def envelope_figures(amount: Decimal, requests: Iterable[RequestMoney]) -> EnvelopeFigures:
    granted = Decimal(0)
    paid = Decimal(0)
    for r in requests:
        granted += r.committed
        paid += r.paid
    return EnvelopeFigures(amount=amount, granted=granted, paid=paid)


def voucher_number(year: int, sequence: int) -> str:
    return f"BA-{year}-{sequence:06d}"


# comparison of règlements -------------------------------------------------------------------


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
