"""The orientation state machine (domain.md §8), on the transition machinery of referrals:
the same error policy (see :mod:`api.domain.referrals.rules`); ``refuse`` takes its code
from the shared :data:`~api.domain.referrals.rules.DECLINE_REASONS`, ``end`` needs a reason."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from api.domain.referrals.rules import (
    Requirement,
    Transition,
    allowed_actions,
    apply_transition,
    parse_action,
)

RSA_ORIENTATION_CATEGORIES: frozenset[str] = frozenset(
    {"sociale", "professionnelle", "socio_professionnelle"}
)
#: competences whose orientations carry one of these categories (RSA accompaniment)
CATEGORISED: frozenset[str] = frozenset({"rsa", "insertion"})
#: what a proposed orientation shows its target, to decide
PROPOSAL_CATEGORIES: list[str] = ["contact", "identity", "situation"]
#: the reason code of an accepted orientation ended by the acceptance of a new one
REORIENTATION = "reorientation"


class OrientationStatus(StrEnum):
    PROPOSED = "proposed"
    ACCEPTED = "accepted"
    REFUSED = "refused"
    CANCELLED = "cancelled"
    ENDED = "ended"


class OrientationAction(StrEnum):
    ACCEPT = "accept"
    REFUSE = "refuse"
    CANCEL = "cancel"
    END = "end"


class OrientationSide(StrEnum):
    ISSUER = "issuer"
    TARGET = "target"
    SYSTEM = "system"


_O = OrientationStatus
_TARGET = frozenset({OrientationSide.TARGET})

ORIENTATION_TRANSITIONS: Mapping[
    OrientationAction, Transition[OrientationStatus, OrientationSide]
] = {
    OrientationAction.ACCEPT: Transition(frozenset({_O.PROPOSED}), _O.ACCEPTED, _TARGET),
    OrientationAction.REFUSE: Transition(
        frozenset({_O.PROPOSED}), _O.REFUSED, _TARGET, Requirement.REASON_CODE
    ),
    OrientationAction.CANCEL: Transition(
        frozenset({_O.PROPOSED}), _O.CANCELLED, frozenset({OrientationSide.ISSUER})
    ),
    OrientationAction.END: Transition(
        frozenset({_O.ACCEPTED}), _O.ENDED, frozenset(OrientationSide), Requirement.REASON
    ),
}

ORIENTATION_TERMINAL: frozenset[OrientationStatus] = frozenset({_O.REFUSED, _O.CANCELLED, _O.ENDED})


def allowed_orientation_actions(status: OrientationStatus, side: OrientationSide) -> list[str]:
    return allowed_actions(ORIENTATION_TRANSITIONS, status, side)


def apply_orientation_action(
    status: OrientationStatus,
    action: OrientationAction | str,
    side: OrientationSide,
    reason_code: str | None = None,
    comment: str | None = None,
) -> OrientationStatus:
    """The status after ``side`` performs ``action`` (errors: see the module docstring)."""
    return apply_transition(
        "orientation",
        ORIENTATION_TRANSITIONS,
        status,
        parse_action(OrientationAction, action),
        side,
        reason_code,
        None,
        comment,
    )
