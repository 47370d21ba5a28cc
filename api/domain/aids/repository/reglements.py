"""Règlement versions and their aid types (public: the directory of aids)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

from sqlalchemy import Select, func, literal, or_, select
from sqlalchemy import String as SqlString
from sqlalchemy.dialects.postgresql import ARRAY, distinct_on
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from api.db.tables import Commune
from api.domain.aids.tables import AidRules, AidType


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
    def _in_force(on: date) -> Select[Any]:
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
