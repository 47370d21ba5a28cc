"""Legal-aid dossiers (domain.md §4 "Decisions stay with the law", §9): the status lifecycle
and field ownership. Pure.

Lifecycle, and who moves it (a side is the organisation's role on *this* dossier; the
département instructing its own dossier holds both sides):

============  ==================  ============  ===========================================
action        from                to            side
============  ==================  ============  ===========================================
``submit``    ``draft``           ``submitted``   instructing
``review``    ``submitted``       ``under_review`` deciding
``decide``    ``under_review``    ``decided``     deciding (legal holder, ``decideur`` role)
``notify``    ``decided``         ``notified``    deciding
``close``     ``draft``           ``closed``      instructing (abandoned before submission)
``close``     ``notified``        ``closed``      either
============  ==================  ============  ===========================================

Errors, in this order: an action not allowed from the status → :class:`InvalidTransition`
(409, ``allowed_actions`` for the caller's sides); allowed but reserved to the other side →
:class:`Forbidden` (403).

Field ownership: ``instruction`` belongs to the instructing side, the decision fields
(:data:`DECISION_FIELDS`) to the deciding side. The instruction can change until the dossier
is decided; a decision can be corrected while ``decided`` (before notification).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from api.problems import Forbidden, InvalidTransition


class DossierStatus(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    UNDER_REVIEW = "under_review"
    DECIDED = "decided"
    NOTIFIED = "notified"
    CLOSED = "closed"


class DossierAction(StrEnum):
    SUBMIT = "submit"
    REVIEW = "review"
    DECIDE = "decide"
    NOTIFY = "notify"
    CLOSE = "close"


class Side(StrEnum):
    INSTRUCTING = "instructing"
    DECIDING = "deciding"


_S = DossierStatus
_I = frozenset({Side.INSTRUCTING})
_D = frozenset({Side.DECIDING})
BOTH_SIDES = frozenset(Side)

#: the lifecycle's order; a status never moves back
STATUS_ORDER: tuple[DossierStatus, ...] = tuple(DossierStatus)
#: statuses that carry a decision
DECIDED_STATUSES = frozenset({_S.DECIDED, _S.NOTIFIED})
#: statuses at or after the decision: decision fields may be carried
AFTER_DECISION = frozenset({_S.DECIDED, _S.NOTIFIED, _S.CLOSED})
INSTRUCTION_OPEN = frozenset({_S.DRAFT, _S.SUBMITTED, _S.UNDER_REVIEW})

INSTRUCTION_FIELDS: frozenset[str] = frozenset({"instruction"})
DECISION_FIELDS: frozenset[str] = frozenset(
    {"decision", "amount", "start_on", "end_on", "decision_reason", "decided_on"}
)


@dataclass(frozen=True)
class Step:
    action: DossierAction
    source: DossierStatus
    target: DossierStatus
    sides: frozenset[Side]


STEPS: tuple[Step, ...] = (
    Step(DossierAction.SUBMIT, _S.DRAFT, _S.SUBMITTED, _I),
    Step(DossierAction.REVIEW, _S.SUBMITTED, _S.UNDER_REVIEW, _D),
    Step(DossierAction.DECIDE, _S.UNDER_REVIEW, _S.DECIDED, _D),
    Step(DossierAction.NOTIFY, _S.DECIDED, _S.NOTIFIED, _D),
    Step(DossierAction.CLOSE, _S.DRAFT, _S.CLOSED, _I),
    Step(DossierAction.CLOSE, _S.NOTIFIED, _S.CLOSED, BOTH_SIDES),
)


def sides_of(
    organisation_id: object, instructing_id: object, deciding_id: object
) -> frozenset[Side]:
    """The sides ``organisation_id`` holds on a dossier (none, one, or both)."""
    found = set()
    if organisation_id == instructing_id:
        found.add(Side.INSTRUCTING)
    if organisation_id == deciding_id:
        found.add(Side.DECIDING)
    return frozenset(found)


def allowed_actions(status: DossierStatus, sides: frozenset[Side]) -> list[str]:
    """What the caller's sides may do from ``status``, in lifecycle order, without repeats."""
    return list(
        dict.fromkeys(str(s.action) for s in STEPS if s.source == status and s.sides & sides)
    )


def apply_action(
    status: DossierStatus, action: DossierAction, sides: frozenset[Side]
) -> DossierStatus:
    """The status after the caller's sides take ``action`` (errors: module docstring).

    A side that may never take ``action`` is refused (403) before the status is looked at:
    the 409 and its allowed actions are for those who may act, some other time."""
    allowed_sides = frozenset().union(*(s.sides for s in STEPS if s.action == action))
    if not allowed_sides & sides:
        who = " or ".join(sorted(str(s) for s in allowed_sides))
        raise Forbidden(detail=f"Only the {who} organisation may {action} a dossier.")
    step = next((s for s in STEPS if s.action == action and s.source == status), None)
    if step is None:
        raise InvalidTransition(
            detail=f"Action '{action}' is not allowed while the dossier is {status}.",
            extra={"allowed_actions": allowed_actions(status, sides)},
        )
    if not step.sides & sides:
        who = " or ".join(sorted(str(s) for s in step.sides))
        raise Forbidden(detail=f"Only the {who} organisation may {action} this dossier.")
    return step.target


def status_path(current: DossierStatus, target: DossierStatus) -> list[Step] | None:
    """The shortest run of steps from ``current`` to ``target`` ([] when equal), or None when
    ``target`` is not ahead of ``current`` in the lifecycle."""
    paths: dict[DossierStatus, list[Step]] = {current: []}
    frontier = [current]
    while frontier:
        following = []
        for status in frontier:
            for step in STEPS:
                if step.source == status and step.target not in paths:
                    paths[step.target] = [*paths[status], step]
                    following.append(step.target)
        frontier = following
    return paths.get(target)


def unowned(fields: Iterable[str], sides: frozenset[Side]) -> list[str]:
    """The fields among ``fields`` the caller's sides do not own, in the given order."""
    missing = []
    for name in fields:
        owner = Side.DECIDING if name in DECISION_FIELDS else Side.INSTRUCTING
        if owner not in sides:
            missing.append(name)
    return missing


def owner_label(name: str) -> str:
    if name in DECISION_FIELDS:
        return "Owned by the deciding organisation."
    return "Owned by the instructing organisation."
