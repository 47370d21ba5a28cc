"""Legal-aid dossiers (domain.md §4 "Decisions stay with the law", §9): the status lifecycle,
field ownership, decisions, and how one sync item applies to a stored dossier. Pure.

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

A sync item (:func:`plan_update`, :func:`plan_create`) carries a status and, optionally, the
instruction and the decision, as its system knew them at ``source_updated_at``. Checked in
this order:

1. the item itself (:func:`check_incoming`): decision consistent with the status;
2. nothing differs from what is stored → ``unchanged`` (nothing written);
3. a field group that differs was changed after ``source_updated_at`` → ``conflict``
   (:class:`SyncConflict`): the stored value is newer than the item's, whoever wrote it;
4. a field group that differs belongs to the other side → ``error`` (:class:`FieldNotOwned`);
5. the status moves along the lifecycle (never back) through steps the syncing side may take,
   otherwise ``error``; the instruction may not change once decided.

A group written by a sync records the item's ``source_updated_at`` as its change time (when
the value became true at its source), so an older item replayed later is a conflict and not a
rollback, and the source's own clock is compared with itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from api.domain.clock import PARIS
from api.domain.dossiers.problems import FieldNotOwned, SyncConflict
from api.problems import (
    Conflict,
    DomainError,
    FieldError,
    Forbidden,
    InvalidTransition,
    ValidationFailed,
)


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


class Decision(StrEnum):
    GRANTED = "granted"
    REJECTED = "rejected"
    ADJOURNED = "adjourned"


class SyncOutcome(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    CONFLICT = "conflict"
    ERROR = "error"


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


# decisions ----------------------------------------------------------------------------------


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


# sync ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stored:
    """What the sync compares an item with: the dossier as stored."""

    status: DossierStatus
    instruction: Mapping[str, Any]
    decision: DecisionValues | None
    instruction_updated_at: datetime
    decision_updated_at: datetime | None
    status_changed_at: datetime


@dataclass(frozen=True)
class Incoming:
    """One sync item's dossier fields; ``None`` for a group the item does not carry."""

    status: DossierStatus
    source_updated_at: datetime
    instruction: Mapping[str, Any] | None = None
    decision: DecisionValues | None = None


@dataclass(frozen=True)
class Plan:
    outcome: SyncOutcome
    #: the columns to write (with their change times)
    changes: dict[str, Any] = field(default_factory=dict)
    #: the lifecycle steps taken, in order
    steps: tuple[Step, ...] = ()
    problem: DomainError | None = None


def _error(problem: DomainError) -> Plan:
    return Plan(SyncOutcome.ERROR, problem=problem)


def check_incoming(item: Incoming, prefix: str = "") -> list[FieldError]:
    """The item on its own: its decision is valid and consistent with its status."""
    errors = []
    if item.decision is not None:
        if item.status not in AFTER_DECISION:
            errors.append(
                FieldError(
                    f"{prefix}/decision", f"A {item.status} dossier carries no decision yet."
                )
            )
        errors += check_decision(item.decision, f"{prefix}/decision")
    return errors


def _invalid(errors: list[FieldError]) -> Plan:
    return _error(ValidationFailed(detail=errors[0].detail, errors=errors))


def _check_steps(
    steps: list[Step], sides: frozenset[Side], has_decision: bool, prefix: str
) -> Plan | None:
    for step in steps:
        if not step.sides & sides:
            who = " or ".join(sorted(str(s) for s in step.sides))
            detail = f"Only the {who} organisation may {step.action} this dossier."
            return _error(
                FieldNotOwned(detail=detail, errors=[FieldError(f"{prefix}/status", detail)])
            )
        if step.action is DossierAction.DECIDE and not has_decision:
            detail = f"A {step.target} dossier needs its decision."
            return _invalid([FieldError(f"{prefix}/decision", detail)])
    return None


def _source_date(item: Incoming) -> date:
    return item.source_updated_at.astimezone(PARIS).date()


def plan_create(item: Incoming, sides: frozenset[Side], prefix: str = "") -> Plan:
    """A new dossier from a sync item, taken from ``draft`` to the item's status by the
    syncing organisation's sides."""
    errors = check_incoming(item, prefix)
    if errors:
        return _invalid(errors)
    if item.decision is not None and Side.DECIDING not in sides:
        detail = owner_label("decision")
        return _error(
            FieldNotOwned(detail=detail, errors=[FieldError(f"{prefix}/decision", detail)])
        )
    steps = status_path(DossierStatus.DRAFT, item.status) or []
    refused = _check_steps(steps, sides, item.decision is not None, prefix)
    if refused is not None:
        return refused
    at = item.source_updated_at
    changes: dict[str, Any] = {
        "status": str(item.status),
        "status_changed_at": at,
        "instruction": dict(item.instruction or {}),
        "instruction_updated_at": at,
    }
    if item.decision is not None:
        decision = replace(item.decision, decided_on=item.decision.decided_on or _source_date(item))
        changes.update(decision.columns(), decision_updated_at=at)
    return Plan(SyncOutcome.CREATED, changes, tuple(steps))


def plan_update(stored: Stored, item: Incoming, sides: frozenset[Side], prefix: str = "") -> Plan:
    """How a sync item applies to a stored dossier (order of checks: module docstring)."""
    errors = check_incoming(item, prefix)
    if errors:
        return _invalid(errors)
    decision = item.decision
    if decision is not None and decision.decided_on is None:
        # not carried: the stored date stands, or the day the source recorded the decision
        kept = stored.decision.decided_on if stored.decision else None
        decision = replace(decision, decided_on=kept or _source_date(item))
    # (name, pointer, when the stored value was last changed)
    differing: list[tuple[str, str, datetime | None]] = []
    if item.instruction is not None and dict(item.instruction) != dict(stored.instruction):
        differing.append(("instruction", f"{prefix}/instruction", stored.instruction_updated_at))
    if decision is not None and decision != stored.decision:
        differing.append(("decision", f"{prefix}/decision", stored.decision_updated_at))
    if item.status != stored.status:
        differing.append(("status", f"{prefix}/status", stored.status_changed_at))
    if not differing:
        return Plan(SyncOutcome.UNCHANGED)

    stale = [
        FieldError(pointer, "Changed here after this item's source_updated_at.")
        for _, pointer, changed_at in differing
        if changed_at is not None and changed_at > item.source_updated_at
    ]
    if stale:
        return Plan(
            SyncOutcome.CONFLICT,
            problem=SyncConflict(
                detail="The dossier changed after this version of it: read it again, "
                "reconcile, and send it with a newer source_updated_at.",
                errors=stale,
            ),
        )
    names = [name for name, _, _ in differing if name != "status"]
    foreign = unowned(names, sides)
    if foreign:
        return _error(
            FieldNotOwned(
                detail=f"Not yours to write: {', '.join(foreign)}.",
                errors=[FieldError(f"{prefix}/{name}", owner_label(name)) for name in foreign],
            )
        )
    steps = status_path(stored.status, item.status)
    if steps is None:
        return _error(
            InvalidTransition(
                detail=f"A {stored.status} dossier cannot go back to {item.status}.",
                errors=[FieldError(f"{prefix}/status", "Statuses never go back.")],
                extra={"allowed_actions": allowed_actions(stored.status, sides)},
            )
        )
    has_decision = decision is not None or stored.decision is not None
    refused = _check_steps(steps, sides, has_decision, prefix)
    if refused is not None:
        return refused
    if item.status in DECIDED_STATUSES and not has_decision:
        return _invalid([FieldError(f"{prefix}/decision", "A decided dossier needs a decision.")])
    if "instruction" in names and stored.status not in INSTRUCTION_OPEN:
        detail = f"The instruction of a {stored.status} dossier no longer changes."
        return _error(Conflict(detail=detail, errors=[FieldError(f"{prefix}/instruction", detail)]))

    at = item.source_updated_at
    changes: dict[str, Any] = {}
    if "instruction" in names:
        changes.update(instruction=dict(item.instruction or {}), instruction_updated_at=at)
    if "decision" in names and decision is not None:
        changes.update(decision.columns(), decision_updated_at=at)
    if item.status != stored.status:
        changes.update(status=str(item.status), status_changed_at=at)
    return Plan(SyncOutcome.UPDATED, changes, tuple(steps))
