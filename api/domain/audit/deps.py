"""How routers reach the audit trail: the request's log, built from its scope and session, so
that routers import no repository (the ``routers-never-query`` layer contract)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from api.auth.deps import CurrentScope
from api.domain.audit.repository import AuditLog
from api.http.deps import Session


def audit_log(scope: CurrentScope, session: Session) -> AuditLog:
    return AuditLog(session, scope)


RequestAuditLog = Annotated[AuditLog, Depends(audit_log)]
