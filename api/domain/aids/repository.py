"""Queries of aides facultatives, typed. Règlements are public; everything else runs under the
request's scope and row-level security (migration 0019), which repeats who may read a row."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Date, Integer, case, delete, func, literal, or_, select, update
from sqlalchemy import String as SqlString
from sqlalchemy.dialects.postgresql import ARRAY, distinct_on, insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlmodel import col

from api.auth.scope import Scope
from api.db.tables import Beneficiary, CareTeamMembership, Commune
from api.domain.aids.tables import (
    AidCommission,
    AidEnvelope,
    AidPayment,
    AidRequest,
    AidRequestEvent,
    AidRules,
    AidType,
    AidVoucherCounter,
)


class RulesRepository:
    """Règlement versions and their aid types: public reads, writes by their organisation."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, rules: AidRules, types: Sequence[AidType]) -> None:
        self.session.add(rules)
        await self.session.flush()
        self.session.add_all(types)
        await self.session.flush()

    async def get(self, rules_id: uuid.UUID) -> AidRules | None:
        return await self.session.get(AidRules, rules_id)

    async def types_of(self, rules_ids: Sequence[uuid.UUID]) -> list[AidType]:
        stmt = (
            select(AidType)
            .where(col(AidType.rules_id).in_(list(rules_ids)))
            .order_by(col(AidType.rules_id), col(AidType.position))
        )
        return list((await self.session.scalars(stmt)).all())

    async def page(
        self,
        *,
        organisation_id: uuid.UUID | None,
        commune: str | None,
        on: date | None,
        after: uuid.UUID | None,
        limit: int,
    ) -> list[AidRules]:
        stmt = select(AidRules)
        if organisation_id is not None:
            stmt = stmt.where(col(AidRules.organisation_id) == organisation_id)
        if commune is not None:
            covering = select(col(AidType.rules_id)).where(
                col(AidType.communes).contains(literal([commune], ARRAY(SqlString(5))))
            )
            stmt = stmt.where(col(AidRules.id).in_(covering))
        if on is not None:
            stmt = stmt.where(col(AidRules.id).in_(self._in_force(on).scalar_subquery()))
        if after is not None:
            stmt = stmt.where(col(AidRules.id) > after)
        stmt = stmt.order_by(col(AidRules.id)).limit(limit + 1)
        return list((await self.session.scalars(stmt)).all())

    @staticmethod
    def _in_force(on: date) -> Any:
        """The id of each organisation's version in force on ``on``: the latest started,
        unless it has ended."""
        latest = (
            select(col(AidRules.id), col(AidRules.valid_until))
            .where(col(AidRules.valid_from) <= on)
            .ext(distinct_on(col(AidRules.organisation_id)))
            .order_by(col(AidRules.organisation_id), col(AidRules.valid_from).desc())
            .subquery()
        )
        return select(latest.c.id).where(
            or_(latest.c.valid_until.is_(None), latest.c.valid_until >= on)
        )

    async def version_in_force(self, organisation_id: uuid.UUID, on: date) -> AidRules | None:
        stmt = (
            select(AidRules)
            .where(
                col(AidRules.organisation_id) == organisation_id,
                col(AidRules.valid_from) <= on,
            )
            .order_by(col(AidRules.valid_from).desc())
            .limit(1)
        )
        found = (await self.session.scalars(stmt)).first()
        if found is None or (found.valid_until is not None and found.valid_until < on):
            return None
        return found

    async def same_start(self, organisation_id: uuid.UUID, valid_from: date) -> bool:
        stmt = select(func.count()).where(
            col(AidRules.organisation_id) == organisation_id,
            col(AidRules.valid_from) == valid_from,
        )
        return bool(await self.session.scalar(stmt))

    async def grantors_of(self, code: str, commune: str, on: date) -> list[AidType]:
        """Aid types ``code`` in force on ``on`` covering ``commune``, one per grantor."""
        stmt = select(AidType).where(
            col(AidType.code) == code,
            col(AidType.communes).contains(literal([commune], ARRAY(SqlString(5)))),
            col(AidType.rules_id).in_(self._in_force(on).scalar_subquery()),
        )
        return list((await self.session.scalars(stmt)).all())

    async def offers(
        self, communes: Sequence[str], on: date, category: str | None
    ) -> list[tuple[AidType, AidRules]]:
        """Every aid type in force on ``on`` covering one of ``communes``."""
        stmt = (
            select(AidType, AidRules)
            .join(AidRules, col(AidRules.id) == col(AidType.rules_id))
            .where(
                col(AidType.communes).op("&&")(literal(list(communes), ARRAY(SqlString(5)))),
                col(AidType.rules_id).in_(self._in_force(on).scalar_subquery()),
            )
            .order_by(col(AidType.organisation_id), col(AidType.position))
        )
        if category is not None:
            stmt = stmt.where(col(AidType.category) == category)
        return [(t, r) for t, r in (await self.session.execute(stmt)).all()]

    async def communes_of(self, *, epci: str | None, departement: str | None) -> list[str]:
        stmt = select(col(Commune.code)).order_by(col(Commune.code))
        if epci is not None:
            stmt = stmt.where(col(Commune.epci_siren) == epci)
        if departement is not None:
            stmt = stmt.where(col(Commune.departement_code) == departement)
        return list((await self.session.scalars(stmt)).all())

    async def known_communes(self, codes: Iterable[str]) -> set[str]:
        stmt = select(col(Commune.code)).where(col(Commune.code).in_(list(codes)))
        return set((await self.session.scalars(stmt)).all())


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

    def _select(self) -> Any:
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


@dataclass(frozen=True)
class MoneyLine:
    """A granted request of the year, for the envelopes."""

    aid_code: str
    category: str
    granted: Decimal
    paid: Decimal
    cancelled: Decimal


class MoneyRepository:
    """Payments, voucher counters and envelopes of the scope's organisation (the grantor)."""

    def __init__(self, session: AsyncSession, scope: Scope) -> None:
        self.session = session
        self.scope = scope

    async def next_voucher(self, year: int) -> int:
        """The next number of the year, taken in this transaction: concurrent payments wait
        on the counter row, and a rollback gives the number back (no gap)."""
        stmt = (
            insert(AidVoucherCounter)
            .values(organisation_id=self.scope.organisation_id, year=year, last_number=1)
            .on_conflict_do_update(
                index_elements=[
                    col(AidVoucherCounter.organisation_id),
                    col(AidVoucherCounter.year),
                ],
                set_={"last_number": AidVoucherCounter.last_number + 1},
            )
            .returning(col(AidVoucherCounter.last_number))
        )
        return int((await self.session.execute(stmt)).scalar_one())

    async def add_payment(self, payment: AidPayment) -> None:
        self.session.add(payment)
        await self.session.flush()

    async def payment(
        self, payment_id: uuid.UUID, *, for_update: bool = False
    ) -> AidPayment | None:
        stmt = select(AidPayment).where(col(AidPayment.id) == payment_id)
        if for_update:
            stmt = stmt.with_for_update()
        stmt = stmt.execution_options(populate_existing=True)
        return (await self.session.scalars(stmt)).first()

    async def payments_of(self, request_id: uuid.UUID) -> list[AidPayment]:
        stmt = (
            select(AidPayment)
            .where(col(AidPayment.request_id) == request_id)
            .order_by(col(AidPayment.created_at), col(AidPayment.id))
            .execution_options(populate_existing=True)
        )
        return list((await self.session.scalars(stmt)).all())

    async def cancel(self, payment_id: uuid.UUID, at: datetime) -> None:
        await self.session.execute(
            update(AidPayment).where(col(AidPayment.id) == payment_id).values(cancelled_at=at)
        )

    async def payments_between(self, start: date | None, end: date | None) -> list[AidPayment]:
        stmt = select(AidPayment).where(
            col(AidPayment.grantor_organisation_id) == self.scope.organisation_id
        )
        if start is not None:
            stmt = stmt.where(col(AidPayment.paid_on) >= start)
        if end is not None:
            stmt = stmt.where(col(AidPayment.paid_on) <= end)
        stmt = stmt.order_by(
            col(AidPayment.paid_on), col(AidPayment.voucher_sequence), col(AidPayment.id)
        )
        return list((await self.session.scalars(stmt)).all())

    async def envelopes(self, year: int, *, for_update: bool = False) -> list[AidEnvelope]:
        stmt = (
            select(AidEnvelope)
            .where(
                col(AidEnvelope.organisation_id) == self.scope.organisation_id,
                col(AidEnvelope.year) == year,
            )
            .order_by(col(AidEnvelope.aid_code), col(AidEnvelope.category))
        )
        if for_update:
            stmt = stmt.with_for_update()
        return list((await self.session.scalars(stmt)).all())

    async def lock_year(self, year: int) -> None:
        """Serialise the grants and envelope changes of one grantor's year (a transaction
        advisory lock: a grant reads the envelope's remaining amount and commits against it)."""
        key = f"aid_envelope:{self.scope.organisation_id}:{year}"
        await self.session.execute(
            select(func.pg_advisory_xact_lock(func.hashtextextended(key, 0)))
        )

    async def replace_envelopes(self, year: int, items: Sequence[AidEnvelope]) -> None:
        await self.session.execute(
            delete(AidEnvelope).where(
                col(AidEnvelope.organisation_id) == self.scope.organisation_id,
                col(AidEnvelope.year) == year,
            )
        )
        self.session.add_all(items)
        await self.session.flush()

    async def money_of_year(self, year: int) -> list[MoneyLine]:
        """The grantor's requests granted in ``year`` with their live and cancelled payments,
        amounts only, through a definer function: a request the grantor can no longer see
        (the person moved away) still counts against the budget it was granted from."""
        fn = func.guichet_aid_money(literal(year, Integer)).table_valued(
            "aid_code", "category", "granted", "paid", "cancelled"
        )
        rows = (await self.session.execute(select(fn))).all()
        return [
            MoneyLine(
                r.aid_code, r.category, Decimal(r.granted), Decimal(r.paid), Decimal(r.cancelled)
            )
            for r in rows
        ]


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

    def savepoint(self) -> Any:
        """A nested transaction: one item of a session's decisions, rolled back alone."""
        return self.session.begin_nested()

    async def close(self, commission_id: uuid.UUID, at: datetime) -> None:
        await self.session.execute(
            update(AidCommission)
            .where(col(AidCommission.id) == commission_id)
            .values(status="closed", closed_at=at)
        )


async def anonymise_aid_requests(
    conn: AsyncConnection, person_ids: Sequence[uuid.UUID], now: datetime
) -> None:
    """Retention (domain.md §11): the aid requests of people being anonymised keep an
    anonymised trace of the decision — aid, category, form, commune, amounts, status, level,
    reason code, dates, reste à vivre, consumption units and household size — and lose the
    free text, the budget lines and the figures of the household's resources. Runs in the
    purge's owner transaction."""
    ids = list(person_ids)
    if not ids:
        return
    trace = func.jsonb_build_object(
        "reste_a_vivre_per_day_per_uc",
        AidRequest.assessment["reste_a_vivre_per_day_per_uc"],  # type: ignore[index]
        "uc",
        AidRequest.assessment["uc"],  # type: ignore[index]
        "required_level",
        AidRequest.assessment["required_level"],  # type: ignore[index]
        "anonymised",
        True,
    )
    await conn.execute(
        update(AidRequest)
        .where(col(AidRequest.beneficiary_id).in_(ids))
        .values(
            reason="",
            derogation_justification=None,
            budget_snapshot=None,
            payee=func.jsonb_build_object("kind", AidRequest.payee["kind"]),
            assessment=case((col(AidRequest.assessment).is_(None), None), else_=trace),
            updated_at=now,
        )
    )
    await conn.execute(
        update(AidRequestEvent)
        .where(col(AidRequestEvent.beneficiary_id).in_(ids))
        .values(comment=None)
    )
