"""What every use case of the people noun starts from: the request's context, and the
person's record with what the caller may read of it (or 404, or 301 to a survivor)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NoReturn

from api.auth import access
from api.auth.permissions import Action
from api.auth.scope import Scope
from api.db.tables import Beneficiary
from api.domain.audit.repository import AuditLog
from api.domain.catalogue import DataCategory
from api.domain.organisations.repository import OrganisationStore
from api.domain.people.nir import NirCipher
from api.domain.people.problems import merged
from api.domain.people.repository import PeopleStore, PersonRecord
from api.problems import Forbidden, NotFound


@dataclass(frozen=True)
class People:
    """What the use cases need, built by the router for one request."""

    scope: Scope
    store: PeopleStore
    orgs: OrganisationStore
    audit: AuditLog
    nir: NirCipher


def etag(version: int) -> str:
    return f'"{version}"'


async def categories_of(
    ctx: People, people: Sequence[Beneficiary]
) -> dict[uuid.UUID, frozenset[DataCategory]]:
    """What the caller may read of each person, asked of the access rule in one query."""
    return await access.person_categories(ctx.store.session, ctx.scope, [p.id for p in people])


def require_category(categories: frozenset[DataCategory], category: DataCategory) -> None:
    if category not in categories:
        raise Forbidden(detail=f"Your access to this person does not cover {category.value}.")


async def visible_person(
    ctx: People, person_id: uuid.UUID
) -> tuple[Beneficiary, frozenset[DataCategory]]:
    """The record and the categories the caller may read, or 404 when it may read nothing
    (301 to the surviving record when this one was merged into a person it may read)."""
    row = await ctx.store.get(person_id)
    categories = (await categories_of(ctx, [row]))[row.id] if row is not None else frozenset()
    if row is None or not categories:
        await not_visible(ctx, person_id)
    assert row is not None
    return row, categories


async def touched_person(
    ctx: People, person_id: uuid.UUID, at: datetime
) -> tuple[PersonRecord, frozenset[DataCategory]]:
    """:func:`visible_person` of someone who has just come forward: their last contact set
    to ``at`` at least (retention restarts) in the same round trip, and the answer shows it
    (a refusal after it rolls the touch back with the request)."""
    found = await ctx.store.read_touched(person_id, access.role_categories(ctx.scope), at)
    return await readable_record(ctx, person_id, found)


async def readable_record(
    ctx: People, person_id: uuid.UUID, found: tuple[PersonRecord, list[str]] | None
) -> tuple[PersonRecord, frozenset[DataCategory]]:
    """A record read with the categories the access rule grants on it (None: the caller's
    organisation does not follow the person): 404, or 301 to a surviving record, when it
    grants nothing."""
    categories = access.categories_of_codes(found[1]) if found is not None else frozenset()
    if found is None or not categories:
        await not_visible(ctx, person_id)
    return found[0], categories


async def not_visible(ctx: People, person_id: uuid.UUID) -> NoReturn:
    """404 for a person the caller may read nothing of, or 301 to the surviving record when
    this one was merged into a person it may read."""
    await _redirect_if_merged(ctx, person_id, followed_is_enough=False)
    raise NotFound(detail="No such person.")


async def followed(ctx: People, person_id: uuid.UUID, action: Action) -> Beneficiary:
    """The record when the caller's organisation follows the person, whatever the caller's
    role may read of it (the DPO's ``action``: access log, export); else 404, or 301 when
    it was merged into a person the caller may read or may take ``action`` on."""
    row = await ctx.store.get(person_id)
    if row is None:
        await _redirect_if_merged(ctx, person_id, followed_is_enough=ctx.scope.permits(action))
        raise NotFound(detail="No such person.")
    return row


async def _redirect_if_merged(
    ctx: People, person_id: uuid.UUID, *, followed_is_enough: bool
) -> None:
    """A merged record answers with its survivor, to a caller that may read the survivor."""
    survivor = await ctx.store.merged_into(person_id)
    if survivor is None:
        return
    row = await ctx.store.get(survivor)
    if row is None:
        return
    if followed_is_enough or (await categories_of(ctx, [row]))[row.id]:
        raise merged(person_id, survivor)
