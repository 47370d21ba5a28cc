"""Access requests: those the scope's organisation sent (outbox) or may decide (inbox: it is
attached to the person), and a person's requests for their timeline and export."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ColumnElement, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from api.auth.scope import Scope
from api.db.tables import AccessRequest, CareTeamMembership
from api.domain.people.repository.scoped import Scoped


class PersonAccessRequests(Scoped):
    async def access_requests(self, person_id: uuid.UUID) -> list[AccessRequest]:
        """The person's access requests the scope may see (its own, or all once attached)."""
        stmt = (
            select(AccessRequest)
            .where(col(AccessRequest.beneficiary_id) == person_id)
            .execution_options(populate_existing=True)
        )
        return list((await self.session.scalars(stmt)).all())


class AccessRequestStore:
    """Requests the scope's organisation sent (outbox) or may decide (inbox: it is attached)."""

    def __init__(self, session: AsyncSession, scope: Scope) -> None:
        self.session = session
        self.scope = scope

    async def add(self, values: dict[str, Any]) -> None:
        await self.session.execute(insert(AccessRequest).values(**values))

    async def get(self, request_id: uuid.UUID, *, for_update: bool = False) -> AccessRequest | None:
        stmt = select(AccessRequest).where(col(AccessRequest.id) == request_id, self._visible())
        if for_update:
            stmt = stmt.with_for_update()
        stmt = stmt.execution_options(populate_existing=True)
        return (await self.session.scalars(stmt)).first()

    def _visible(self) -> ColumnElement[bool]:
        org = self.scope.organisation_id
        attached = select(col(CareTeamMembership.beneficiary_id)).where(
            col(CareTeamMembership.organisation_id) == org,
            col(CareTeamMembership.ended_at).is_(None),
        )
        return or_(
            col(AccessRequest.organisation_id) == org,
            col(AccessRequest.beneficiary_id).in_(attached),
        )

    async def box(
        self, box: str, status: str | None, after: uuid.UUID | None, limit: int
    ) -> list[AccessRequest]:
        org = self.scope.organisation_id
        stmt = select(AccessRequest).where(self._visible())
        stmt = (
            stmt.where(col(AccessRequest.organisation_id) == org)
            if box == "outbox"
            else stmt.where(col(AccessRequest.organisation_id) != org)
        )
        if status:
            stmt = stmt.where(col(AccessRequest.status) == status)
        if after is not None:
            stmt = stmt.where(col(AccessRequest.id) > after)
        stmt = stmt.order_by(col(AccessRequest.id)).limit(limit + 1)
        found = await self.session.scalars(stmt.execution_options(populate_existing=True))
        return list(found.all())

    async def decide(self, request_id: uuid.UUID, values: dict[str, Any]) -> None:
        await self.session.execute(
            update(AccessRequest).where(col(AccessRequest.id) == request_id).values(**values)
        )
