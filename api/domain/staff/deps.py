"""How the organisations router reaches the staff use cases, built from the request's scope
and session."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from api.auth.deps import CurrentScope
from api.domain.audit.repository import AuditLog
from api.domain.organisations.repository import OrganisationStore
from api.domain.staff.repository import MemberStore, RoleGrantStore
from api.domain.staff.service import Staff
from api.http.deps import Session


async def staff_context(scope: CurrentScope, session: Session) -> Staff:
    return Staff(
        scope=scope,
        orgs=OrganisationStore(session),
        members=MemberStore(session, scope),
        grants=RoleGrantStore(session, scope),
        audit=AuditLog(session, scope),
    )


StaffContext = Annotated[Staff, Depends(staff_context)]
