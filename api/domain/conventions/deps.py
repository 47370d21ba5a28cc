"""How the conventions router gets its use cases, built from the request's scope and session."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from api.auth.deps import CurrentScope
from api.domain.changes.repository import ChangeLog
from api.domain.conventions.repository import ConventionStore
from api.domain.conventions.service import Conventions
from api.domain.organisations.repository import OrganisationStore
from api.http.deps import Session


async def conventions_context(scope: CurrentScope, session: Session) -> Conventions:
    return Conventions(
        scope=scope,
        orgs=OrganisationStore(session),
        store=ConventionStore(session, scope),
        changes=ChangeLog(session),
    )


ConventionsContext = Annotated[Conventions, Depends(conventions_context)]
