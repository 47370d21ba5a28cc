"""Conventions the scope's organisation is a party to, and what conventions make others hold."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, func, literal, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from api.auth.scope import Scope
from api.db.tables import Convention, ConventionEvent


def convention_holdings(
    grantee: uuid.UUID | None, competence: str | None, commune: str | None, on: date
) -> Any:
    """The ``convention_holdings`` database function as a table: who holds which competence
    on which commune through which convention in force on ``on`` (public; each argument but
    ``on`` narrows it when given)."""
    return func.convention_holdings(grantee, competence, commune, on).table_valued(
        "grantee_id", "competence", "commune", "convention_id"
    )


class ConventionStore:
    """Conventions the scope's organisation is a party to (row-level security repeats it)."""

    def __init__(self, session: AsyncSession, scope: Scope) -> None:
        self.session = session
        self.scope = scope

    def _visible(self) -> ColumnElement[bool]:
        org = self.scope.organisation_id
        return or_(col(Convention.grantor_id) == org, col(Convention.grantee_id) == org)

    async def add(self, convention: Convention) -> None:
        self.session.add(convention)
        await self.session.flush()

    async def get(self, convention_id: uuid.UUID, *, for_update: bool = False) -> Convention | None:
        stmt = select(Convention).where(col(Convention.id) == convention_id, self._visible())
        if for_update:
            stmt = stmt.with_for_update()
        stmt = stmt.execution_options(populate_existing=True)
        return (await self.session.scalars(stmt)).first()

    async def page(
        self,
        *,
        side: str | None,
        status: str | None,
        after: tuple[datetime, uuid.UUID] | None,
        limit: int,
    ) -> list[Convention]:
        """Newest first; ``limit + 1`` rows at most."""
        org = self.scope.organisation_id
        stmt = select(Convention).where(self._visible())
        if side == "grantor":
            stmt = stmt.where(col(Convention.grantor_id) == org)
        elif side == "grantee":
            stmt = stmt.where(col(Convention.grantee_id) == org)
        if status:
            stmt = stmt.where(col(Convention.status) == status)
        key = (col(Convention.created_at), col(Convention.id))
        if after is not None:
            stmt = stmt.where(tuple_(*key) < tuple_(*(literal(v) for v in after)))
        stmt = stmt.order_by(*(k.desc() for k in key)).limit(limit + 1)
        return list((await self.session.scalars(stmt)).all())

    async def set_status(self, convention_id: uuid.UUID, status: str, now: datetime) -> Convention:
        stmt = (
            update(Convention)
            .where(col(Convention.id) == convention_id, self._visible())
            .values(status=status, updated_at=now, version=col(Convention.version) + 1)
            .returning(Convention)
            .execution_options(populate_existing=True)
        )
        return (await self.session.scalars(stmt)).one()

    async def add_event(self, event: ConventionEvent) -> None:
        self.session.add(event)
        await self.session.flush()

    async def events(self, convention_ids: Sequence[uuid.UUID]) -> list[ConventionEvent]:
        org = self.scope.organisation_id
        stmt = (
            select(ConventionEvent)
            .where(
                col(ConventionEvent.convention_id).in_(list(convention_ids)),
                or_(
                    col(ConventionEvent.grantor_id) == org,
                    col(ConventionEvent.grantee_id) == org,
                ),
            )
            .order_by(col(ConventionEvent.at), col(ConventionEvent.id))
        )
        return list((await self.session.scalars(stmt)).all())
