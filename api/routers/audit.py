"""The caller organisation's audit trail."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import AwareDatetime

from api.auth.deps import CurrentScope
from api.domain.audit import service
from api.domain.audit.deps import RequestAuditLog
from api.domain.audit.schemas import AuditEntryRead
from api.http.deps import TransactionRoute
from api.http.schemas import Cursor, Limit, Page

router = APIRouter(prefix="/v1", tags=["audit"], route_class=TransactionRoute)

Bound = AwareDatetime | date | None


@router.get("/audit", response_model=Page[AuditEntryRead])
async def read_audit_trail(
    scope: CurrentScope,
    log: RequestAuditLog,
    actor_id: Annotated[uuid.UUID | None, Query(description="A user or API client id.")] = None,
    beneficiary_id: Annotated[uuid.UUID | None, Query()] = None,
    action: Annotated[str | None, Query(max_length=60)] = None,
    from_: Annotated[
        Bound,
        Query(alias="from", description="Date (from its start, French time) or instant."),
    ] = None,
    to: Annotated[
        Bound,
        Query(description="Date (through its end, French time) or instant (excluded)."),
    ] = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[AuditEntryRead]:
    """The audit trail of the caller's organisation, newest first (admin, dpo)."""
    return await service.read_trail(
        scope,
        log,
        actor_id=actor_id,
        beneficiary_id=beneficiary_id,
        action=action,
        from_=from_,
        to=to,
        cursor=cursor,
        limit=limit,
    )
