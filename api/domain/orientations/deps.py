"""How the orientations router gets its use cases, built from the request's scope and
session."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from api.auth.deps import CurrentScope
from api.domain.changes.repository import ChangeLog
from api.domain.orientations.repository import OrientationStore
from api.domain.orientations.service import Orientations
from api.domain.people.deps import PeopleContext
from api.http.deps import Session


async def orientations_context(
    scope: CurrentScope, session: Session, people: PeopleContext
) -> Orientations:
    return Orientations(
        scope=scope,
        store=OrientationStore(session, scope),
        orgs=people.orgs,
        people=people,
        audit=people.audit,
        changes=ChangeLog(session),
    )


OrientationsContext = Annotated[Orientations, Depends(orientations_context)]
