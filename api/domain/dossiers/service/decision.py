"""The decision, the deciding side's part of a dossier: recorded by a legal holder with the
``decideur`` role, corrected while ``decided`` (before it is notified)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from api.auth.permissions import Action
from api.auth.scope import Scope
from api.domain import clock
from api.domain.dossiers.repository import StoredDossier
from api.domain.dossiers.rules import DecisionValues, DossierStatus, check_decision
from api.domain.dossiers.schemas import DecideBody
from api.domain.dossiers.service.context import decision_of
from api.problems import Conflict, FieldError, Forbidden, ValidationFailed


def decided_columns(
    scope: Scope, row: StoredDossier, body: DecideBody, now: datetime
) -> dict[str, Any]:
    """The columns the ``decide`` action writes: a legal holder of the prestation on the
    person's commune decides, today, a valid decision."""
    scope.require(Action.DECIDE)
    holding = scope.holding(row.prestation, row.commune_code) if row.commune_code else None
    if holding is None or holding.source != "law":
        raise Forbidden(detail="Only a legal holder of the prestation decides (by law).")
    decision = DecisionValues(
        decision=body.decision,
        amount=body.amount,
        start_on=body.start_on,
        end_on=body.end_on,
        reason=body.reason,
        decided_on=clock.today(),
    )
    errors = check_decision(decision)
    if errors:
        raise ValidationFailed(detail=errors[0].detail, errors=errors)
    return {**decision.columns(), "decision_updated_at": now}


def corrected_columns(
    row: StoredDossier, changes: dict[str, Any], fields: list[str], now: datetime
) -> dict[str, Any]:
    """The decision columns a correction writes (none when it changes nothing); the decision
    is never removed and its date stays."""
    if "decision" in changes and changes["decision"] is None:
        raise ValidationFailed(
            detail="A decision is corrected, never removed.",
            errors=[FieldError("/decision", "Required.")],
        )
    stored = decision_of(row)
    if DossierStatus(row.status) is not DossierStatus.DECIDED or stored is None:
        raise Conflict(
            detail="A decision is corrected while decided, before it is notified.",
            errors=[FieldError(f"/{n}", "Not correctable now.") for n in sorted(fields)],
        )
    corrected = DecisionValues(
        decision=changes.get("decision", stored.decision),
        amount=changes.get("amount", stored.amount),
        start_on=changes.get("start_on", stored.start_on),
        end_on=changes.get("end_on", stored.end_on),
        reason=changes.get("decision_reason", stored.reason),
        decided_on=stored.decided_on,
    )
    errors = [
        FieldError("/decision_reason" if e.pointer == "/reason" else e.pointer, e.detail)
        for e in check_decision(corrected)
    ]
    if errors:
        raise ValidationFailed(detail=errors[0].detail, errors=errors)
    if corrected == stored:
        return {}
    return {**corrected.columns(), "decision_updated_at": now}
