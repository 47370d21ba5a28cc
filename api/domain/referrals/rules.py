"""The referral (adressage) state machine (domain.md §8), and the transition machinery and
reason codes the orientation state machine (:mod:`api.domain.orientations.rules`) shares.

Errors, checked in this order (the same policy as conventions):

1. unknown action name → :class:`ValidationFailed` on ``/action`` (in the path);
2. action not allowed from the status for anyone → :class:`InvalidTransition` (409) with
   ``extra["allowed_actions"]``: what the caller's side may do from that status;
3. allowed from the status but not for the caller's side → :class:`Forbidden` (403);
4. a required code or reason missing or unknown → :class:`ValidationFailed` (422) on
   ``/reason_code``, ``/outcome_code`` or ``/comment``.

Choices where domain.md is silent:

* ``system`` is the service acting on its own: it expires overdue referrals, cancels
  referrals when a consent withdrawal is recorded (whoever records it), and ends an accepted
  orientation when a new one is accepted for the same competence (réorientation).
* ``resume`` always leads to ``in_progress``: the table says accepted/in_progress ⇄ on_hold
  but a pure rule cannot know the former status, and resuming means work is under way.
* ``not-complete`` and orientation ``refuse`` take their code from :data:`DECLINE_REASONS`,
  the shared reason code list.
* ``hold``, ``redirect``, ``cancel`` and orientation ``end`` need *a reason*: a non-blank
  ``comment`` or a reason code (any code for redirect/cancel/end/hold, not only
  :data:`DECLINE_REASONS`); when both are missing the error points at ``/comment``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from enum import Enum, StrEnum
from typing import Generic, TypeVar

from api.domain.calendar import add_working_days, working_days_between
from api.problems import FieldError, Forbidden, InvalidTransition, ValidationFailed

DECLINE_REASONS: frozenset[str] = frozenset(
    {
        "hors_competence",
        "non_eligible",
        "pas_de_capacite",
        "doublon",
        "injoignable",
        "refus_personne",
        "autre",
    }
)
OUTCOMES: frozenset[str] = frozenset(
    {
        "service_rendu",
        "droit_ouvert",
        "aide_accordee",
        "aide_refusee",
        "reoriente",
        "injoignable",
        "abandon",
        "autre",
    }
)


class Requirement(Enum):
    NONE = "none"
    REASON_CODE = "reason_code"  # a code from DECLINE_REASONS
    OUTCOME_CODE = "outcome_code"  # a code from OUTCOMES
    REASON = "reason"  # a non-blank comment or any reason code


St = TypeVar("St", bound=StrEnum)
Sd = TypeVar("Sd", bound=StrEnum)
Ac = TypeVar("Ac", bound=StrEnum)


@dataclass(frozen=True)
class Transition(Generic[St, Sd]):
    sources: frozenset[St]
    target: St
    sides: frozenset[Sd]
    requires: Requirement = Requirement.NONE


def allowed_actions(table: Mapping[Ac, Transition[St, Sd]], status: St, side: Sd) -> list[str]:
    return [str(a) for a, t in table.items() if status in t.sources and side in t.sides]


def _check_requirement(
    requires: Requirement, reason_code: str | None, outcome_code: str | None, comment: str | None
) -> None:
    error: FieldError | None = None
    if requires is Requirement.REASON_CODE and reason_code not in DECLINE_REASONS:
        detail = (
            "A reason code is required."
            if not reason_code
            else f"Unknown reason code '{reason_code}'."
        )
        error = FieldError("/reason_code", detail)
    elif requires is Requirement.OUTCOME_CODE and outcome_code not in OUTCOMES:
        detail = (
            "An outcome code is required."
            if not outcome_code
            else f"Unknown outcome code '{outcome_code}'."
        )
        error = FieldError("/outcome_code", detail)
    elif requires is Requirement.REASON and not reason_code and not (comment or "").strip():
        error = FieldError("/comment", "A reason is required (comment or reason code).")
    if error is not None:
        raise ValidationFailed(detail=error.detail, errors=[error])


def apply_transition(
    kind: str,
    table: Mapping[Ac, Transition[St, Sd]],
    status: St,
    action: Ac,
    side: Sd,
    reason_code: str | None,
    outcome_code: str | None,
    comment: str | None,
) -> St:
    transition = table[action]
    if status not in transition.sources:
        raise InvalidTransition(
            detail=f"Action '{action}' is not allowed while the {kind} is {status}.",
            extra={"allowed_actions": allowed_actions(table, status, side)},
        )
    if side not in transition.sides:
        who = " or ".join(sorted(str(s) for s in transition.sides))
        raise Forbidden(detail=f"Only the {who} may {action} this {kind}.")
    _check_requirement(transition.requires, reason_code, outcome_code, comment)
    return transition.target


def parse_action(enum: type[Ac], action: str) -> Ac:
    try:
        return enum(action)
    except ValueError:
        detail = f"Unknown action '{action}'."
        raise ValidationFailed(
            detail=detail, errors=[FieldError("/action", detail, location="path")]
        ) from None


# --- referrals -------------------------------------------------------------------------------


class ReferralStatus(StrEnum):
    SENT = "sent"
    ACKNOWLEDGED = "acknowledged"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    REDIRECTED = "redirected"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"
    IN_PROGRESS = "in_progress"
    ON_HOLD = "on_hold"
    COMPLETED = "completed"
    NOT_COMPLETED = "not_completed"
    CANCELLED = "cancelled"


class ReferralAction(StrEnum):
    ACKNOWLEDGE = "acknowledge"
    ACCEPT = "accept"
    DECLINE = "decline"
    REDIRECT = "redirect"
    WITHDRAW = "withdraw"
    EXPIRE = "expire"
    START = "start"
    HOLD = "hold"
    RESUME = "resume"
    COMPLETE = "complete"
    NOT_COMPLETE = "not-complete"
    CANCEL = "cancel"


class ReferralSide(StrEnum):
    SENDER = "sender"
    RECIPIENT = "recipient"
    SYSTEM = "system"


_R = ReferralStatus
_RECIPIENT = frozenset({ReferralSide.RECIPIENT})
_UNANSWERED = frozenset({_R.SENT, _R.ACKNOWLEDGED})

REFERRAL_TRANSITIONS: Mapping[ReferralAction, Transition[ReferralStatus, ReferralSide]] = {
    ReferralAction.ACKNOWLEDGE: Transition(frozenset({_R.SENT}), _R.ACKNOWLEDGED, _RECIPIENT),
    ReferralAction.ACCEPT: Transition(_UNANSWERED, _R.ACCEPTED, _RECIPIENT),
    ReferralAction.DECLINE: Transition(
        _UNANSWERED, _R.DECLINED, _RECIPIENT, Requirement.REASON_CODE
    ),
    ReferralAction.REDIRECT: Transition(_UNANSWERED, _R.REDIRECTED, _RECIPIENT, Requirement.REASON),
    ReferralAction.WITHDRAW: Transition(
        _UNANSWERED, _R.WITHDRAWN, frozenset({ReferralSide.SENDER})
    ),
    ReferralAction.EXPIRE: Transition(_UNANSWERED, _R.EXPIRED, frozenset({ReferralSide.SYSTEM})),
    ReferralAction.START: Transition(frozenset({_R.ACCEPTED}), _R.IN_PROGRESS, _RECIPIENT),
    ReferralAction.HOLD: Transition(
        frozenset({_R.ACCEPTED, _R.IN_PROGRESS}), _R.ON_HOLD, _RECIPIENT, Requirement.REASON
    ),
    ReferralAction.RESUME: Transition(frozenset({_R.ON_HOLD}), _R.IN_PROGRESS, _RECIPIENT),
    ReferralAction.COMPLETE: Transition(
        frozenset({_R.IN_PROGRESS, _R.ON_HOLD}), _R.COMPLETED, _RECIPIENT, Requirement.OUTCOME_CODE
    ),
    ReferralAction.NOT_COMPLETE: Transition(
        frozenset({_R.ACCEPTED, _R.IN_PROGRESS, _R.ON_HOLD}),
        _R.NOT_COMPLETED,
        _RECIPIENT,
        Requirement.REASON_CODE,
    ),
    ReferralAction.CANCEL: Transition(
        frozenset({_R.SENT, _R.ACKNOWLEDGED, _R.ACCEPTED}),
        _R.CANCELLED,
        frozenset({ReferralSide.SENDER, ReferralSide.SYSTEM}),
        Requirement.REASON,
    ),
}

REFERRAL_TERMINAL: frozenset[ReferralStatus] = frozenset(_R) - frozenset(
    s for t in REFERRAL_TRANSITIONS.values() for s in t.sources
)
"""declined, redirected, withdrawn, expired, completed, not_completed, cancelled."""

REFERRAL_OPEN: frozenset[ReferralStatus] = frozenset(_R) - REFERRAL_TERMINAL


def allowed_referral_actions(status: ReferralStatus, side: ReferralSide) -> list[str]:
    return allowed_actions(REFERRAL_TRANSITIONS, status, side)


def apply_referral_action(
    status: ReferralStatus,
    action: ReferralAction | str,
    side: ReferralSide,
    reason_code: str | None = None,
    outcome_code: str | None = None,
    comment: str | None = None,
) -> ReferralStatus:
    """The status after ``side`` performs ``action`` (errors: see the module docstring)."""
    return apply_transition(
        "referral",
        REFERRAL_TRANSITIONS,
        status,
        parse_action(ReferralAction, action),
        side,
        reason_code,
        outcome_code,
        comment,
    )


# --- deadlines and what a referral shares ----------------------------------------------------

DEFAULT_RESPONSE_WORKING_DAYS = 10
#: working days to answer, where a competence's needs cannot wait the default
RESPONSE_WORKING_DAYS: Mapping[str, int] = {
    "aide_alimentaire": 3,
    "violences": 2,
    "aide_facultative": 5,
    "domiciliation": 5,
}
#: an urgent referral is answered within this many working days at most
HIGH_URGENCY_WORKING_DAYS = 2


def default_response_due_on(competence: str, urgency: str, today: date) -> date:
    """The deadline when the sender names none: per competence, shortened when urgent."""
    days = RESPONSE_WORKING_DAYS.get(competence, DEFAULT_RESPONSE_WORKING_DAYS)
    if urgency == "high":
        days = min(days, HIGH_URGENCY_WORKING_DAYS)
    return add_working_days(today, days)


def resumed_response_due_on(due: date, paused_on: date, today: date) -> date:
    """On hold pauses the deadline: resuming pushes it by the working days spent on hold."""
    return add_working_days(due, max(working_days_between(paused_on, today), 0))


def check_shared_categories(
    shared: Iterable[str], visible: Iterable[str], *, inline: bool
) -> list[FieldError]:
    """The recipient sees before accepting what the sender chose, at least ``identity``, and
    never more than the sender itself may see (an inline identity: identity and contact)."""
    shared = list(shared)
    allowed = {"identity", "contact"} if inline else set(visible)
    errors = [
        FieldError(f"/shared_categories/{i}", f"You may not share {c}: you do not see it.")
        for i, c in enumerate(shared)
        if c not in allowed
    ]
    if "identity" not in shared:
        errors.append(FieldError("/shared_categories", "Must include identity."))
    return errors
