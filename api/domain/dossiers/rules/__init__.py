"""The pure rules of legal-aid dossiers: ``lifecycle`` (statuses, sides, transitions, field
ownership), ``decisions`` (what makes a decision valid) and ``sync`` (how one sync item
applies to a stored dossier)."""

from __future__ import annotations

from api.domain.dossiers.rules.decisions import Decision, DecisionValues, check_decision
from api.domain.dossiers.rules.lifecycle import (
    AFTER_DECISION,
    BOTH_SIDES,
    DECIDED_STATUSES,
    DECISION_FIELDS,
    INSTRUCTION_FIELDS,
    INSTRUCTION_OPEN,
    STATUS_ORDER,
    STEPS,
    DossierAction,
    DossierStatus,
    Side,
    Step,
    allowed_actions,
    apply_action,
    owner_label,
    sides_of,
    status_path,
    unowned,
)
from api.domain.dossiers.rules.sync import (
    Incoming,
    Plan,
    Stored,
    SyncOutcome,
    check_incoming,
    plan_create,
    plan_update,
)

__all__ = [
    "AFTER_DECISION",
    "BOTH_SIDES",
    "DECIDED_STATUSES",
    "DECISION_FIELDS",
    "INSTRUCTION_FIELDS",
    "INSTRUCTION_OPEN",
    "STATUS_ORDER",
    "STEPS",
    "Decision",
    "DecisionValues",
    "DossierAction",
    "DossierStatus",
    "Incoming",
    "Plan",
    "Side",
    "Step",
    "Stored",
    "SyncOutcome",
    "allowed_actions",
    "apply_action",
    "check_decision",
    "check_incoming",
    "owner_label",
    "plan_create",
    "plan_update",
    "sides_of",
    "status_path",
    "unowned",
]
