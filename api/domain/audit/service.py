"""Reading the audit trail: an organisation's own trail and a person's access log."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta

from api.auth.permissions import Action
from api.auth.scope import Scope
from api.domain.audit.repository import AuditLog
from api.domain.audit.schemas import AccessLogItem, AuditActor, AuditEntryRead, AuditOrganisation
from api.domain.audit.tables import AuditEntry
from api.domain.clock import PARIS
from api.http.schemas import Page, decode_cursor, encode_cursor
from api.problems import FieldError, ValidationFailed


def _after_id(cursor: str | None) -> int | None:
    position = decode_cursor(cursor, 1)
    if position is None:
        return None
    if type(position[0]) is not int:
        raise ValidationFailed(
            detail="The cursor is not one this service issued.",
            errors=[FieldError("/cursor", "Invalid cursor.", "query")],
        )
    return position[0]


def _next_cursor(entries: Sequence[AuditEntry], limit: int) -> str | None:
    return encode_cursor([entries[limit - 1].id]) if len(entries) > limit else None


def _actor(row: AuditEntry) -> AuditActor | None:
    if row.actor_user_id is not None:
        return AuditActor(kind="user", id=row.actor_user_id)
    if row.actor_client_id is not None:
        return AuditActor(kind="client", id=row.actor_client_id)
    return None


def _instant(value: datetime | date | None, *, end: bool) -> datetime | None:
    """A date bound covers the whole day in French time: ``from`` its first instant, ``to``
    up to the next day's first instant (excluded)."""
    if value is None or isinstance(value, datetime):
        return value
    return datetime.combine(value + timedelta(days=1) if end else value, time(), PARIS)


async def read_trail(
    scope: Scope,
    log: AuditLog,
    *,
    actor_id: uuid.UUID | None,
    beneficiary_id: uuid.UUID | None,
    action: str | None,
    from_: datetime | date | None,
    to: datetime | date | None,
    cursor: str | None,
    limit: int,
) -> Page[AuditEntryRead]:
    """The caller organisation's own entries, newest first (admin, dpo)."""
    scope.require(Action.READ_AUDIT)
    rows = await log.trail(
        actor_id=actor_id,
        beneficiary_id=beneficiary_id,
        action=action,
        from_=_instant(from_, end=False),
        to=_instant(to, end=True),
        after_id=_after_id(cursor),
        limit=limit,
    )
    items = [
        AuditEntryRead(
            id=r.id,
            at=r.at,
            actor=_actor(r),
            acting_agent=r.acting_agent,
            action=r.action,
            resource_type=r.resource_type,
            resource_id=r.resource_id,
            beneficiary_id=r.beneficiary_id,
            purpose=r.purpose,
            request_id=r.request_id,
            hash=r.hash,
        )
        for r in rows[:limit]
    ]
    return Page[AuditEntryRead](items=items, next_cursor=_next_cursor(rows, limit))


async def read_access_log(
    scope: Scope, log: AuditLog, beneficiary_id: uuid.UUID, *, cursor: str | None, limit: int
) -> Page[AccessLogItem]:
    """Every organisation's accesses to the person, newest first.

    The caller must already have checked that ``scope`` may read the person's access log
    (attached to the person, or its DPO): this function does not, and row-level security
    would only hide other organisations' entries from an unattached caller."""
    rows = await log.access_log(beneficiary_id, after_id=_after_id(cursor), limit=limit)
    items = [
        AccessLogItem(
            at=r.at,
            organisation=AuditOrganisation(id=r.organisation_id, name=organisation_name),
            actor=_actor(r),
            action=r.action,
            purpose=r.purpose,
        )
        for r, organisation_name in rows[:limit]
    ]
    entries = [r for r, _ in rows]
    return Page[AccessLogItem](items=items, next_cursor=_next_cursor(entries, limit))
