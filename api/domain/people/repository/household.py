"""A person's household and budget (the service checks categories; RLS checks attachment)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import delete, insert, select
from sqlmodel import col

from api.db.tables import Beneficiary, BudgetLine, HouseholdMember
from api.domain.people.repository.scoped import Scoped
from api.problems import FieldError, ValidationFailed


class HouseholdQueries(Scoped):
    async def household(self, person_id: uuid.UUID) -> list[HouseholdMember]:
        stmt = (
            select(HouseholdMember)
            .where(col(HouseholdMember.beneficiary_id) == person_id)
            .order_by(col(HouseholdMember.id))
            .execution_options(populate_existing=True)
        )
        return list((await self.session.scalars(stmt)).all())

    async def replace_household(self, person_id: uuid.UUID, members: list[dict[str, Any]]) -> None:
        await self.session.execute(
            delete(HouseholdMember).where(col(HouseholdMember.beneficiary_id) == person_id)
        )
        named = {m["member_beneficiary_id"] for m in members} - {None}
        if named:
            # A member naming an id nobody here can read is bad input, not a database error.
            found = await self.session.scalars(
                select(col(Beneficiary.id)).where(col(Beneficiary.id).in_(named))
            )
            unknown = named - set(found)
            if unknown:
                errors = [
                    FieldError(f"/members/{i}/beneficiary_id", "No such beneficiary.")
                    for i, m in enumerate(members)
                    if m["member_beneficiary_id"] in unknown
                ]
                raise ValidationFailed(detail=errors[0].detail, errors=errors)
        if members:
            await self.session.execute(insert(HouseholdMember), members)

    async def budget(self, person_id: uuid.UUID) -> list[BudgetLine]:
        stmt = (
            select(BudgetLine)
            .where(col(BudgetLine.beneficiary_id) == person_id)
            .order_by(col(BudgetLine.kind), col(BudgetLine.type))
            .execution_options(populate_existing=True)
        )
        return list((await self.session.scalars(stmt)).all())

    async def replace_budget(self, person_id: uuid.UUID, lines: list[dict[str, Any]]) -> None:
        await self.session.execute(
            delete(BudgetLine).where(col(BudgetLine.beneficiary_id) == person_id)
        )
        if lines:
            await self.session.execute(insert(BudgetLine), lines)
