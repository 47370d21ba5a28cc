"""Which dossiers the caller may see: those whose person it may read *for the dossier's
prestation* with the ``dossiers`` category, asked of the one access rule."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import access
from api.auth.scope import Scope
from api.domain.catalogue import DataCategory
from api.domain.dossiers.repository import StoredDossier
from api.domain.dossiers.service.context import Dossiers
from api.problems import NotFound


async def dossier_categories(
    session: AsyncSession, scope: Scope, dossiers: Mapping[uuid.UUID, tuple[uuid.UUID, str]]
) -> dict[uuid.UUID, frozenset[DataCategory]]:
    """What the caller may read of each dossier's person *for its prestation*, asked of the
    access rule (``api.auth.access.record_categories``): a dossier is visible when that
    holds ``dossiers``. One query whatever the number of dossiers, given as ``{dossier id:
    (person id, prestation)}``."""
    return await access.record_categories(session, scope, dossiers)


async def visible_ids(
    ctx: Dossiers, dossiers: Mapping[uuid.UUID, tuple[uuid.UUID, str]]
) -> set[uuid.UUID]:
    categories = await dossier_categories(ctx.people.store.session, ctx.scope, dossiers)
    return {d for d, found in categories.items() if DataCategory.DOSSIERS in found}


async def visible_rows(ctx: Dossiers, rows: Sequence[StoredDossier]) -> set[uuid.UUID]:
    """The ids of the stored dossiers the caller may see."""
    return await visible_ids(ctx, {r.id: (r.beneficiary_id, r.prestation) for r in rows})


async def visible(
    ctx: Dossiers, dossier_id: uuid.UUID, *, for_update: bool = False
) -> StoredDossier:
    """The dossier, or 404 when the caller may not see it."""
    row = await ctx.store.get(dossier_id, for_update=for_update)
    if row is None or row.id not in await visible_rows(ctx, [row]):
        raise NotFound(detail="No such dossier.")
    return row
