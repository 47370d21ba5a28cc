"""How the aid routers get what their use cases need: one function per context, built from
the request's scope and session (the one wiring style of the new-shape nouns)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends

from api.auth.deps import CurrentScope
from api.auth.scope import Scope
from api.domain.aids.repository.commissions import CommissionRepository
from api.domain.aids.repository.money import MoneyRepository
from api.domain.aids.repository.reglements import RulesRepository
from api.domain.aids.repository.requests import RequestRepository
from api.domain.audit.repository import AuditLog
from api.domain.changes.repository import ChangeLog
from api.domain.organisations.repository import OrganisationStore
from api.domain.people.repository import PeopleStore
from api.http.deps import Session


@dataclass(frozen=True)
class Aids:
    """What the aid use cases need, for one request."""

    scope: Scope
    rules: RulesRepository
    requests: RequestRepository
    money: MoneyRepository
    commissions: CommissionRepository
    people: PeopleStore
    orgs: OrganisationStore
    audit: AuditLog
    changes: ChangeLog


def public_rules(session: Session) -> RulesRepository:
    """Règlements are public: no scope, no personal data."""
    return RulesRepository(session)


def aids_context(scope: CurrentScope, session: Session) -> Aids:
    return Aids(
        scope=scope,
        rules=RulesRepository(session),
        requests=RequestRepository(session, scope),
        money=MoneyRepository(session, scope),
        commissions=CommissionRepository(session, scope),
        people=PeopleStore(session, scope),
        orgs=OrganisationStore(session),
        audit=AuditLog(session, scope),
        changes=ChangeLog(session),
    )


PublicRules = Annotated[RulesRepository, Depends(public_rules)]
AidsContext = Annotated[Aids, Depends(aids_context)]
