"""A person's household and budget (the ``household`` and ``resources`` categories), with
the reste à vivre per person per day."""

from __future__ import annotations

import uuid

from api.auth import access
from api.domain.budget import remaining_income_per_person_per_day
from api.domain.catalogue import DataCategory
from api.domain.people.schemas import (
    Budget,
    BudgetLineIn,
    BudgetRead,
    Household,
    HouseholdMemberIn,
    HouseholdRead,
)
from api.domain.people.service.context import People, require_category, visible_person
from api.problems import FieldError, ValidationFailed


async def household(ctx: People, person_id: uuid.UUID) -> HouseholdRead:
    _, categories = await visible_person(ctx, person_id)
    require_category(categories, DataCategory.HOUSEHOLD)
    await ctx.audit.record(
        "household.read", "beneficiary", str(person_id), beneficiary_id=person_id
    )
    return HouseholdRead(
        members=[
            HouseholdMemberIn(
                beneficiary_id=m.member_beneficiary_id,
                first_name=m.first_name,
                birth_date=m.birth_date,
                relation=m.relation,
            )
            for m in await ctx.store.household(person_id)
        ]
    )


async def replace_household(ctx: People, person_id: uuid.UUID, body: Household) -> HouseholdRead:
    _, categories = await visible_person(ctx, person_id)
    require_category(categories, DataCategory.HOUSEHOLD)
    errors = [
        FieldError(f"/members/{i}", "Name a beneficiary_id, or a first_name and birth_date.")
        for i, m in enumerate(body.members)
        if m.beneficiary_id is None and not (m.first_name and m.birth_date)
    ]
    linked = [m.beneficiary_id for m in body.members if m.beneficiary_id is not None]
    readable = await access.person_categories(ctx.store.session, ctx.scope, linked)
    # unknown and not readable answer alike: a household link is no existence oracle
    errors += [
        FieldError(f"/members/{i}/beneficiary_id", "No such person among those you follow.")
        for i, m in enumerate(body.members)
        if m.beneficiary_id is not None and not readable.get(m.beneficiary_id)
    ]
    if errors:
        raise ValidationFailed(detail=errors[0].detail, errors=errors)
    await ctx.store.replace_household(
        person_id,
        [
            {
                "id": uuid.uuid4(),
                "beneficiary_id": person_id,
                "member_beneficiary_id": m.beneficiary_id,
                "first_name": m.first_name,
                "birth_date": m.birth_date,
                "relation": m.relation,
            }
            for m in body.members
        ],
    )
    await ctx.audit.record(
        "household.update", "beneficiary", str(person_id), beneficiary_id=person_id
    )
    return await household(ctx, person_id)


async def budget(ctx: People, person_id: uuid.UUID, *, audit: bool = True) -> BudgetRead:
    _, categories = await visible_person(ctx, person_id)
    require_category(categories, DataCategory.RESOURCES)
    lines = await ctx.store.budget(person_id)
    resources = [
        BudgetLineIn(type=line.type, monthly_amount=line.monthly_amount)
        for line in lines
        if line.kind == "resource"
    ]
    charges = [
        BudgetLineIn(type=line.type, monthly_amount=line.monthly_amount)
        for line in lines
        if line.kind == "charge"
    ]
    # the person plus the members of their household
    size = 1 + sum(1 for m in await ctx.store.household(person_id) if m.relation != "demandeur")
    if audit:
        await ctx.audit.record(
            "budget.read", "beneficiary", str(person_id), beneficiary_id=person_id
        )
    return BudgetRead(
        resources=resources,
        charges=charges,
        household_size=size,
        remaining_income_per_person_per_day=remaining_income_per_person_per_day(
            [r.monthly_amount for r in resources], [c.monthly_amount for c in charges], size
        ),
    )


async def replace_budget(ctx: People, person_id: uuid.UUID, body: Budget) -> BudgetRead:
    _, categories = await visible_person(ctx, person_id)
    require_category(categories, DataCategory.RESOURCES)
    await ctx.store.replace_budget(
        person_id,
        [
            {
                "id": uuid.uuid4(),
                "beneficiary_id": person_id,
                "kind": kind,
                "type": line.type,
                "monthly_amount": line.monthly_amount,
            }
            for kind, lines in (("resource", body.resources), ("charge", body.charges))
            for line in lines
        ],
    )
    await ctx.audit.record("budget.update", "beneficiary", str(person_id), beneficiary_id=person_id)
    return await budget(ctx, person_id, audit=False)
