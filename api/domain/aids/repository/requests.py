"""Aid requests, their events and the household's history (scope and row-level security)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import Date, Select, func, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from api.auth.scope import Scope
from api.db.tables import Beneficiary, CareTeamMembership
from api.domain.aids.tables import AidRequest, AidRequestEvent


@dataclass(frozen=True)
class RequestRow:
    """A request with its person's commune now (the access rule asks about it)."""

    request: AidRequest
    person_commune: str | None

    # what the access adapter reads of a record
    @property
    def id(self) -> uuid.UUID:
        return self.request.id

    @property
    def beneficiary_id(self) -> uuid.UUID:
        return self.request.beneficiary_id

    @property
    def competence(self) -> str:
        return self.request.competence


@dataclass(frozen=True)
class HistoryLine:
    aid_code: str
    requests: int
    amount: Decimal


class RequestRepository:
    """Aid requests of the people the scope's organisation is attached to (row-level security
    repeats it; the access adapter narrows to the aid's competence)."""

    def __init__(self, session: AsyncSession, scope: Scope) -> None:
        self.session = session
        self.scope = scope

    def _select(self) -> Select[AidRequest, str | None]:
        return select(AidRequest, col(Beneficiary.commune_code)).join(
            Beneficiary, col(Beneficiary.id) == col(AidRequest.beneficiary_id)
        )

    async def get(self, request_id: uuid.UUID, *, for_update: bool = False) -> RequestRow | None:
        stmt = self._select().where(col(AidRequest.id) == request_id)
        if for_update:
            stmt = stmt.with_for_update(of=AidRequest)
        stmt = stmt.execution_options(populate_existing=True)
        found = (await self.session.execute(stmt)).first()
        return RequestRow(found[0], found[1]) if found else None

    async def get_many(self, ids: Sequence[uuid.UUID], *, for_update: bool) -> list[RequestRow]:
        stmt = self._select().where(col(AidRequest.id).in_(sorted(set(ids))))
        stmt = stmt.order_by(col(AidRequest.id)).execution_options(populate_existing=True)
        if for_update:
            stmt = stmt.with_for_update(of=AidRequest)
        return [RequestRow(r, c) for r, c in (await self.session.execute(stmt)).all()]

    async def page(
        self,
        *,
        status: str | None,
        beneficiary_id: uuid.UUID | None,
        organisation_id: uuid.UUID | None,
        after: uuid.UUID | None,
        limit: int,
    ) -> list[RequestRow]:
        stmt = self._select()
        if status is not None:
            stmt = stmt.where(col(AidRequest.status) == status)
        if beneficiary_id is not None:
            stmt = stmt.where(col(AidRequest.beneficiary_id) == beneficiary_id)
        if organisation_id is not None:
            stmt = stmt.where(col(AidRequest.grantor_organisation_id) == organisation_id)
        if after is not None:
            stmt = stmt.where(col(AidRequest.id) > after)
        stmt = stmt.order_by(col(AidRequest.id)).limit(limit + 1)
        return [RequestRow(r, c) for r, c in (await self.session.execute(stmt)).all()]

    async def add(self, request: AidRequest) -> None:
        self.session.add(request)
        await self.session.flush()

    async def update(self, request_id: uuid.UUID, version: int, values: dict[str, Any]) -> bool:
        """Optimistic: only when still at ``version`` (then one version more)."""
        stmt = (
            update(AidRequest)
            .where(col(AidRequest.id) == request_id, col(AidRequest.version) == version)
            .values(**values, version=version + 1)
            .returning(col(AidRequest.id))
        )
        return (await self.session.execute(stmt)).first() is not None

    async def add_event(self, event: AidRequestEvent) -> None:
        self.session.add(event)
        await self.session.flush()

    async def events(self, request_id: uuid.UUID) -> list[AidRequestEvent]:
        stmt = (
            select(AidRequestEvent)
            .where(col(AidRequestEvent.request_id) == request_id)
            .order_by(col(AidRequestEvent.id))
        )
        return list((await self.session.scalars(stmt)).all())

    async def history(
        self, person_id: uuid.UUID, grantor: uuid.UUID, since: date
    ) -> list[HistoryLine]:
        """The household's granted aids from ``grantor`` since ``since``, amounts only."""
        fn = func.guichet_aid_history(person_id, grantor, literal(since, Date)).table_valued(
            "aid_code", "requests", "amount"
        )
        rows = (await self.session.execute(select(fn.c.aid_code, fn.c.requests, fn.c.amount))).all()
        return [HistoryLine(r.aid_code, int(r.requests), Decimal(r.amount)) for r in rows]

    async def follows(
        self, person_id: uuid.UUID, organisation_id: uuid.UUID, competence: str
    ) -> bool:
        stmt = select(func.count()).where(
            col(CareTeamMembership.beneficiary_id) == person_id,
            col(CareTeamMembership.organisation_id) == organisation_id,
            col(CareTeamMembership.competence) == competence,
            col(CareTeamMembership.ended_at).is_(None),
        )
        return bool(await self.session.scalar(stmt))

    async def join_team(self, membership: CareTeamMembership) -> None:
        self.session.add(membership)
        await self.session.flush()

    async def events_of_person(
        self, person_id: uuid.UUID
    ) -> list[tuple[AidRequestEvent, AidRequest, str | None]]:
        """The person's request events with their request and the person's commune now."""
        stmt = (
            select(AidRequestEvent, AidRequest, col(Beneficiary.commune_code))
            .join(AidRequest, col(AidRequest.id) == col(AidRequestEvent.request_id))
            .join(Beneficiary, col(Beneficiary.id) == col(AidRequest.beneficiary_id))
            .where(col(AidRequest.beneficiary_id) == person_id)
            .order_by(col(AidRequestEvent.id))
        )
        return [(e, r, c) for e, r, c in (await self.session.execute(stmt)).all()]

    async def emergencies(self, after: date | None, until: date) -> list[AidRequest]:
        """Emergency grants of the scope's organisation decided after ``after`` up to
        ``until``: the next commission is told of them."""
        stmt = select(AidRequest).where(
            col(AidRequest.grantor_organisation_id) == self.scope.organisation_id,
            col(AidRequest.emergency).is_(True),
            col(AidRequest.commission_id).is_(None),
            col(AidRequest.decided_on) <= until,
        )
        if after is not None:
            stmt = stmt.where(col(AidRequest.decided_on) > after)
        return list((await self.session.scalars(stmt.order_by(col(AidRequest.decided_on)))).all())

    async def in_commission(self, commission_id: uuid.UUID) -> list[AidRequest]:
        stmt = (
            select(AidRequest)
            .where(col(AidRequest.commission_id) == commission_id)
            .order_by(col(AidRequest.submitted_on), col(AidRequest.id))
            .execution_options(populate_existing=True)
        )
        return list((await self.session.scalars(stmt)).all())
