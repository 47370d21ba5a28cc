"""How one sync item applies to a stored dossier (domain.md §9). Pure.

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

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from api.domain.clock import PARIS
from api.domain.dossiers.problems import FieldNotOwned, SyncConflict
from api.domain.dossiers.rules.decisions import DecisionValues, check_decision
from api.domain.dossiers.rules.lifecycle import (
    AFTER_DECISION,
    DECIDED_STATUSES,
    INSTRUCTION_OPEN,
    DossierAction,
    DossierStatus,
    Side,
    Step,
    allowed_actions,
    owner_label,
    status_path,
    unowned,
)
from api.problems import Conflict, DomainError, FieldError, InvalidTransition, ValidationFailed


class SyncOutcome(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    CONFLICT = "conflict"
    ERROR = "error"


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


def _carried_decision(stored: Stored, item: Incoming) -> DecisionValues | None:
    """The item's decision, dated: when it carries no date, the stored date stands, or the
    day the source recorded the decision."""
    decision = item.decision
    if decision is not None and decision.decided_on is None:
        kept = stored.decision.decided_on if stored.decision else None
        decision = replace(decision, decided_on=kept or _source_date(item))
    return decision


def _differing(
    stored: Stored, item: Incoming, decision: DecisionValues | None, prefix: str
) -> list[tuple[str, str, datetime | None]]:
    """The field groups the item changes: (name, pointer, when the stored value was last
    changed)."""
    differing: list[tuple[str, str, datetime | None]] = []
    if item.instruction is not None and dict(item.instruction) != dict(stored.instruction):
        differing.append(("instruction", f"{prefix}/instruction", stored.instruction_updated_at))
    if decision is not None and decision != stored.decision:
        differing.append(("decision", f"{prefix}/decision", stored.decision_updated_at))
    if item.status != stored.status:
        differing.append(("status", f"{prefix}/status", stored.status_changed_at))
    return differing


def _stale(differing: list[tuple[str, str, datetime | None]], item: Incoming) -> Plan | None:
    """A conflict when a group the item changes was changed here after the item's time."""
    stale = [
        FieldError(pointer, "Changed here after this item's source_updated_at.")
        for _, pointer, changed_at in differing
        if changed_at is not None and changed_at > item.source_updated_at
    ]
    if not stale:
        return None
    return Plan(
        SyncOutcome.CONFLICT,
        problem=SyncConflict(
            detail="The dossier changed after this version of it: read it again, "
            "reconcile, and send it with a newer source_updated_at.",
            errors=stale,
        ),
    )


def _refused_update(
    stored: Stored,
    item: Incoming,
    sides: frozenset[Side],
    names: list[str],
    has_decision: bool,
    prefix: str,
) -> Plan | None:
    """Checks 4 and 5 of the module docstring: an error plan, or None when applicable."""
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
    refused = _check_steps(steps, sides, has_decision, prefix)
    if refused is not None:
        return refused
    if item.status in DECIDED_STATUSES and not has_decision:
        return _invalid([FieldError(f"{prefix}/decision", "A decided dossier needs a decision.")])
    if "instruction" in names and stored.status not in INSTRUCTION_OPEN:
        detail = f"The instruction of a {stored.status} dossier no longer changes."
        return _error(Conflict(detail=detail, errors=[FieldError(f"{prefix}/instruction", detail)]))
    return None


def plan_update(stored: Stored, item: Incoming, sides: frozenset[Side], prefix: str = "") -> Plan:
    """How a sync item applies to a stored dossier (order of checks: module docstring)."""
    errors = check_incoming(item, prefix)
    if errors:
        return _invalid(errors)
    decision = _carried_decision(stored, item)
    differing = _differing(stored, item, decision, prefix)
    if not differing:
        return Plan(SyncOutcome.UNCHANGED)
    stale = _stale(differing, item)
    if stale is not None:
        return stale
    names = [name for name, _, _ in differing if name != "status"]
    has_decision = decision is not None or stored.decision is not None
    refused = _refused_update(stored, item, sides, names, has_decision, prefix)
    if refused is not None:
        return refused

    at = item.source_updated_at
    changes: dict[str, Any] = {}
    if "instruction" in names:
        changes.update(instruction=dict(item.instruction or {}), instruction_updated_at=at)
    if "decision" in names and decision is not None:
        changes.update(decision.columns(), decision_updated_at=at)
    if item.status != stored.status:
        changes.update(status=str(item.status), status_changed_at=at)
    steps = status_path(stored.status, item.status) or []
    return Plan(SyncOutcome.UPDATED, changes, tuple(steps))
