"""What every dossier use case shares: the request's context and the small helpers that shape
what is written (ETag, actor of an event, audience of a change)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from api.auth.scope import Scope
from api.domain.actors import event_actor
from api.domain.audit.repository import AuditLog
from api.domain.changes.repository import ChangeLog
from api.domain.dossiers.repository import DossierStore, StoredDossier
from api.domain.dossiers.rules import Decision, DecisionValues
from api.domain.organisations.repository import OrganisationStore
from api.domain.people import service as people


@dataclass(frozen=True)
class Dossiers:
    """What the use cases need, built by the router for one request."""

    scope: Scope
    store: DossierStore
    people: people.People
    orgs: OrganisationStore
    audit: AuditLog
    changes: ChangeLog


def etag(version: int) -> str:
    return f'"{version}"'


def actor(scope: Scope, channel: str) -> dict[str, Any]:
    return {**event_actor(scope), "channel": channel}


def audience_of(*organisations: uuid.UUID) -> list[uuid.UUID]:
    return sorted(set(organisations))


def decision_of(row: StoredDossier) -> DecisionValues | None:
    if row.decision is None:
        return None
    return DecisionValues(
        decision=Decision(row.decision),
        amount=row.amount,
        start_on=row.start_on,
        end_on=row.end_on,
        reason=row.decision_reason,
        decided_on=row.decided_on,
    )
