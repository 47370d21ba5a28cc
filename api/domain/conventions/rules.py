"""Conventions de délégation: lifecycle and delegation rules (domain.md §4, §5).

Transition errors, checked in this order:

1. the action is not allowed from the status for anyone → :class:`InvalidTransition` (409),
   whose ``extra["allowed_actions"]`` lists what *the caller's side* may do from that status;
2. it is allowed from the status but belongs to the other side → :class:`Forbidden` (403).

So a grantee trying ``suspend`` on an active convention gets 403, but on a draft 409.

``expired`` is never stored: it is what :func:`effective_status` reads once ``valid_until``
(inclusive) is past, for conventions that were put forward (proposed, active, suspended).
A draft stays a draft (its dates can still be edited) and a revoked one stays revoked.
Actions apply to the effective status, so nothing leaves ``expired`` or ``revoked``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from uuid import UUID

from api.domain.catalogue import CompetenceDef, DataCategory
from api.problems import FieldError, Forbidden, InvalidTransition, ValidationFailed


class ConventionStatus(StrEnum):
    DRAFT = "draft"
    PROPOSED = "proposed"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    REVOKED = "revoked"
    EXPIRED = "expired"


class ConventionAction(StrEnum):
    PROPOSE = "propose"
    ACCEPT = "accept"
    WITHDRAW = "withdraw"
    SUSPEND = "suspend"
    RESUME = "resume"
    REVOKE = "revoke"


class ConventionSide(StrEnum):
    GRANTOR = "grantor"
    GRANTEE = "grantee"


@dataclass(frozen=True)
class ConventionTransition:
    side: ConventionSide
    sources: frozenset[ConventionStatus]
    target: ConventionStatus


_S = ConventionStatus
_A = ConventionAction
_OPEN = frozenset({_S.PROPOSED, _S.ACTIVE, _S.SUSPENDED})

CONVENTION_TRANSITIONS: Mapping[ConventionAction, ConventionTransition] = {
    _A.PROPOSE: ConventionTransition(ConventionSide.GRANTOR, frozenset({_S.DRAFT}), _S.PROPOSED),
    _A.ACCEPT: ConventionTransition(ConventionSide.GRANTEE, frozenset({_S.PROPOSED}), _S.ACTIVE),
    _A.WITHDRAW: ConventionTransition(ConventionSide.GRANTEE, _OPEN, _S.REVOKED),
    _A.SUSPEND: ConventionTransition(ConventionSide.GRANTOR, frozenset({_S.ACTIVE}), _S.SUSPENDED),
    _A.RESUME: ConventionTransition(ConventionSide.GRANTOR, frozenset({_S.SUSPENDED}), _S.ACTIVE),
    _A.REVOKE: ConventionTransition(ConventionSide.GRANTOR, _OPEN, _S.REVOKED),
}


def allowed_convention_actions(status: ConventionStatus, side: ConventionSide) -> list[str]:
    return [
        str(action)
        for action, t in CONVENTION_TRANSITIONS.items()
        if t.side == side and status in t.sources
    ]


def apply_action(
    status: ConventionStatus, action: ConventionAction, side: ConventionSide
) -> ConventionStatus:
    """The status after ``side`` performs ``action`` (see the module docstring for errors)."""
    transition = CONVENTION_TRANSITIONS[ConventionAction(action)]
    if status not in transition.sources:
        raise InvalidTransition(
            detail=f"Action '{action}' is not allowed while the convention is {status}.",
            extra={"allowed_actions": allowed_convention_actions(status, side)},
        )
    if transition.side != side:
        raise Forbidden(detail=f"Only the {transition.side} may {action} a convention.")
    return transition.target


def effective_status(
    status: ConventionStatus, valid_from: date, valid_until: date | None, on: date
) -> ConventionStatus:
    """The status as read on ``on``: ``expired`` once past ``valid_until`` (inclusive)."""
    del valid_from  # a convention not yet started keeps its status; see in_force
    if status in _OPEN and valid_until is not None and on > valid_until:
        return ConventionStatus.EXPIRED
    return status


def in_force(
    status: ConventionStatus, valid_from: date, valid_until: date | None, on: date
) -> bool:
    """Whether the convention grants anything on ``on``: active and within its dates."""
    return (
        effective_status(status, valid_from, valid_until, on) is ConventionStatus.ACTIVE
        and valid_from <= on
    )


def validate_delegation(
    catalogue: Mapping[str, CompetenceDef],
    grantor_kind: str,
    grantee_kind: str,
    competences: Sequence[str],
    communes: Sequence[str],
    grantor_law_communes: Mapping[str, frozenset[str]],
) -> list[FieldError]:
    """Every reason the delegation is not allowed, one error per offending item.

    ``grantor_law_communes`` maps a competence code to the communes where the grantor holds it
    by law. Competence errors point at ``/competences/<i>``; a commune where the grantor does
    not hold by law one of the (otherwise valid) competences points at ``/communes/<j>`` and
    names those competences.
    """
    errors: list[FieldError] = []
    if not competences:
        errors.append(FieldError("/competences", "At least one competence is required."))
    if not communes:
        errors.append(FieldError("/communes", "At least one commune is required."))
    valid: list[str] = []
    seen: set[str] = set()
    for i, code in enumerate(competences):
        pointer = f"/competences/{i}"
        definition = catalogue.get(code)
        if code in seen:
            errors.append(FieldError(pointer, f"Competence '{code}' is listed twice."))
        elif definition is None:
            errors.append(FieldError(pointer, f"Unknown competence '{code}'."))
        elif not definition.delegable:
            errors.append(FieldError(pointer, f"Competence '{code}' is not delegable."))
        elif grantee_kind not in definition.delegable_to:
            errors.append(
                FieldError(pointer, f"Competence '{code}' cannot be delegated to a {grantee_kind}.")
            )
        elif grantor_kind not in definition.legal_holder_kinds:
            errors.append(
                FieldError(
                    pointer,
                    f"A {grantor_kind} does not hold competence '{code}' by law "
                    "and cannot delegate it.",
                )
            )
        else:
            valid.append(code)
        seen.add(code)
    seen_communes: set[str] = set()
    for j, commune in enumerate(communes):
        pointer = f"/communes/{j}"
        if commune in seen_communes:
            errors.append(FieldError(pointer, f"Commune {commune} is listed twice."))
            continue
        seen_communes.add(commune)
        missing = [c for c in valid if commune not in grantor_law_communes.get(c, frozenset())]
        if missing:
            names = ", ".join(f"'{c}'" for c in missing)
            errors.append(
                FieldError(
                    pointer,
                    f"The grantor does not hold {names} by law on commune {commune}.",
                )
            )
    return errors


def validate_parties(grantor_id: UUID, grantee_id: UUID) -> list[FieldError]:
    if grantor_id == grantee_id:
        return [FieldError("/grantee_id", "An organisation cannot delegate to itself.")]
    return []


def validate_period(valid_from: date, valid_until: date | None) -> list[FieldError]:
    if valid_until is not None and valid_until < valid_from:
        return [FieldError("/valid_until", "valid_until is before valid_from.")]
    return []


def validate_data_categories(categories: Sequence[str]) -> list[FieldError]:
    """Data categories a convention lets the grantee see; ``nir`` only when listed (§7)."""
    known = {str(c) for c in DataCategory}
    return [
        FieldError(f"/data_categories/{i}", f"Unknown data category '{c}'.")
        for i, c in enumerate(categories)
        if c not in known
    ]


def raise_if_invalid(errors: Sequence[FieldError]) -> None:
    """Raise one :class:`ValidationFailed` carrying every error, if any."""
    if errors:
        raise ValidationFailed(detail="The convention is not valid.", errors=list(errors))
