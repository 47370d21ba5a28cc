"""Commission sessions of a grantor."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, AsyncSessionTransaction
from sqlmodel import col

from api.auth.scope import Scope
from api.domain.aids.tables import AidCommission


class CommissionRepository:
    def __init__(self, session: AsyncSession, scope: Scope) -> None:
        self.session = session
        self.scope = scope

    async def add(self, commission: AidCommission) -> None:
        self.session.add(commission)
        await self.session.flush()

    async def get(
        self, commission_id: uuid.UUID, *, for_update: bool = False
    ) -> AidCommission | None:
        stmt = select(AidCommission).where(
            col(AidCommission.id) == commission_id,
            col(AidCommission.organisation_id) == self.scope.organisation_id,
        )
        if for_update:
            stmt = stmt.with_for_update()
        stmt = stmt.execution_options(populate_existing=True)
        return (await self.session.scalars(stmt)).first()

    async def previous_meeting(self, meeting_on: date) -> date | None:
        """The date of the organisation's last session before ``meeting_on``."""
        stmt = select(func.max(col(AidCommission.meeting_on))).where(
            col(AidCommission.organisation_id) == self.scope.organisation_id,
            col(AidCommission.meeting_on) < meeting_on,
        )
        found: date | None = await self.session.scalar(stmt)
        return found

    def savepoint(self) -> AsyncSessionTransaction:
        """A nested transaction: one item of a session's decisions, rolled back alone."""
        return self.session.begin_nested()

    async def close(self, commission_id: uuid.UUID, at: datetime) -> None:
        await self.session.execute(
            update(AidCommission)
            .where(col(AidCommission.id) == commission_id)
            .values(status="closed", closed_at=at)
        )
