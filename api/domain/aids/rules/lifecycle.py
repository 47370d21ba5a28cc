"""The lifecycle of an aid request, as data (:data:`TRANSITIONS`): each action names the
statuses it leaves, the status it reaches and the side that takes it (the *instructor*
prepares, the *grantor* decides; an organisation instructing its own requests holds both
sides).

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
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from api.problems import Forbidden, InvalidTransition


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
