"""Payments, voucher numbers and envelopes of a grantor."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Integer, delete, func, literal, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from api.auth.scope import Scope
from api.domain.aids.tables import AidEnvelope, AidPayment, AidVoucherCounter


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
