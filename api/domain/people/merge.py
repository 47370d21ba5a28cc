"""Merging two records of the same person (domain.md §6): an explicit, justified, audited
operation that keeps both ids resolvable. Every row referring to the duplicate — in this
capability's tables and in any table added later — moves to the survivor in the database
(``merge_beneficiaries``); the duplicate's id then answers 301 towards the survivor."""

from __future__ import annotations

import uuid

from api.auth.permissions import Action
from api.domain import clock
from api.domain.audit.repository import Access
from api.domain.catalogue import DataCategory
from api.domain.changes.repository import ChangeLog
from api.domain.people.problems import BeneficiaryMerged
from api.domain.people.schemas import MergeRead, MergeRequest
from api.domain.people.service import People, read, visible_person
from api.problems import Conflict, FieldError, Forbidden, ValidationFailed


async def _following(ctx: People, *person_ids: uuid.UUID) -> list[uuid.UUID]:
    """The organisations following either person: they hear of the merge."""
    return sorted(
        {
            m.membership.organisation_id
            for person_id in person_ids
            for m in await ctx.store.team(person_id)
            if m.membership.ended_at is None
        }
    )


async def merge(ctx: People, survivor_id: uuid.UUID, body: MergeRequest) -> tuple[MergeRead, str]:
    duplicate_id = body.duplicate_id
    if duplicate_id == survivor_id:
        raise ValidationFailed(
            detail="A record cannot be merged into itself.",
            errors=[FieldError("/duplicate_id", "Same id as the surviving record.")],
        )
    _, survivor_categories = await visible_person(ctx, survivor_id)
    try:
        _, duplicate_categories = await visible_person(ctx, duplicate_id)
    except BeneficiaryMerged as merged:
        raise Conflict(
            detail="This record was already merged.",
            extra={"merged_into": str(merged.survivor_id)},
        ) from None
    ctx.scope.require(Action.MERGE_PEOPLE)
    if DataCategory.IDENTITY not in survivor_categories & duplicate_categories:
        raise Forbidden(detail="Merging needs to read both identities.")
    audience = await _following(ctx, survivor_id, duplicate_id)
    moved = await ctx.store.merge(survivor_id, duplicate_id, clock.now())
    await ctx.audit.record_many(
        [
            Access(
                "beneficiary.merge",
                "beneficiary",
                str(survivor_id),
                beneficiary_id=survivor_id,
                purpose=body.justification,
            ),
            Access(
                "beneficiary.merged",
                "beneficiary",
                str(duplicate_id),
                beneficiary_id=duplicate_id,
                purpose=body.justification,
            ),
        ]
    )
    await ChangeLog(ctx.store.session).record(
        type="beneficiary",
        resource_id=duplicate_id,
        action="merged",
        event="beneficiary.merged",
        audience=audience,
    )
    person, tag = await read(ctx, survivor_id, audit=False)
    return (
        MergeRead(
            beneficiary=person,
            duplicate_id=duplicate_id,
            moved={f"{m.table_name}.{m.column_name}": m.moved for m in moved if m.moved},
        ),
        tag,
    )
