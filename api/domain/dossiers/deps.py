"""How the dossiers and sync routers get their use cases, built from the request's scope and
session."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from api.auth.deps import CurrentScope
from api.domain.changes.repository import ChangeLog
from api.domain.dossiers.repository import DossierStore
from api.domain.dossiers.service import Dossiers
from api.domain.people.deps import PeopleContext
from api.http.deps import Session


async def dossiers_context(
    scope: CurrentScope, session: Session, people: PeopleContext
) -> Dossiers:
    return Dossiers(
        scope=scope,
        store=DossierStore(session, scope),
        people=people,
        orgs=people.orgs,
        audit=people.audit,
        changes=ChangeLog(session),
    )


DossiersContext = Annotated[Dossiers, Depends(dossiers_context)]
