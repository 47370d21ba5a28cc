"""Who holds which competence where, by law or by convention: an organisation's holdings and
the competent organisations for a commune (public reads)."""

from __future__ import annotations

import uuid
from datetime import date

from api.domain import clock
from api.domain.holdings import Holder, HoldingSource, order_holders
from api.domain.organisations.repository import OrganisationStore
from api.domain.organisations.schemas import (
    CompetentRead,
    HolderRead,
    HoldingRead,
    OrganisationRef,
)
from api.domain.organisations.service import get_organisation
from api.http.schemas import Page, as_text, decode_keyset, encode_cursor
from api.problems import FieldError, ValidationFailed


async def list_holdings(
    store: OrganisationStore,
    organisation_id: uuid.UUID,
    *,
    competence: str | None,
    commune: str | None,
    cursor: str | None,
    limit: int,
) -> Page[HoldingRead]:
    await get_organisation(store, organisation_id)
    rows = await store.holdings(
        organisation_id,
        competence=competence,
        commune=commune,
        on=clock.today(),
        after=decode_keyset(cursor, as_text, as_text, as_text),
        limit=limit,
    )
    page = rows[:limit]
    next_cursor = (
        encode_cursor([page[-1].competence, page[-1].commune, page[-1].source])
        if len(rows) > limit
        else None
    )
    return Page[HoldingRead](
        items=[HoldingRead.model_validate(r, from_attributes=True) for r in page],
        next_cursor=next_cursor,
    )


async def competent(
    store: OrganisationStore, competence: str, commune: str, on: date | None
) -> CompetentRead:
    """Who holds ``competence`` on ``commune``: delegates first, then legal holders."""
    if competence not in {r.code for r in await store.competences()}:
        raise ValidationFailed(
            detail=f"Unknown competence {competence!r}.",
            errors=[FieldError("/competence", "Unknown competence.", "query")],
        )
    if not await store.existing_communes([commune]):
        raise ValidationFailed(
            detail=f"Unknown commune {commune!r}.",
            errors=[FieldError("/commune", "Unknown commune.", "query")],
        )
    day = on or clock.today()
    rows = await store.competent(competence, commune, day)
    kinds = {r.id: r.kind for r in rows}
    holders = order_holders(
        Holder(
            organisation_id=r.id,
            name=r.name,
            source=HoldingSource(r.source),
            convention_id=r.convention_id,
        )
        for r in rows
    )
    return CompetentRead(
        competence=competence,
        commune=commune,
        on=day,
        holders=[
            HolderRead(
                organisation=OrganisationRef(
                    id=h.organisation_id, name=h.name, kind=kinds[h.organisation_id]
                ),
                source=h.source.value,
                convention_id=h.convention_id,
            )
            for h in holders
        ],
    )
