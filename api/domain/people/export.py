"""Right of access (domain.md §11, RGPD art. 15): one export of everything held about a
person across partners, produced for the DPO of an organisation in the person's care team,
for a stated purpose (audited). The rows come from every table referring to the person,
read through the same scoped paths and the same access rule as every other reading: the
export is the union of what the caller's organisation may see, never more."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from typing import Any

from sqlmodel import SQLModel

from api.auth import access
from api.auth.access import Purpose
from api.auth.permissions import Action
from api.domain import clock
from api.domain.audit.schemas import AccessLogItem
from api.domain.audit.service import read_access_log
from api.domain.catalogue import DataCategory
from api.domain.people import rules
from api.domain.people.schemas import ExportRead
from api.domain.people.service.care_team import shown_members
from api.domain.people.service.context import People, followed
from api.domain.people.service.records import shape
from api.problems import NotFound

_LOG_PAGE = 1000


async def _whole_access_log(ctx: People, person_id: uuid.UUID) -> list[AccessLogItem]:
    items: list[AccessLogItem] = []
    cursor: str | None = None
    while True:
        page = await read_access_log(
            ctx.scope, ctx.audit, person_id, cursor=cursor, limit=_LOG_PAGE
        )
        items += page.items
        if page.next_cursor is None:
            return items
        cursor = page.next_cursor


def _rows(rows: Iterable[SQLModel], decrypt: Callable[[bytes], str]) -> list[dict[str, Any]]:
    return [rules.export_row(r.model_dump(), decrypt) for r in rows]


async def export(ctx: People, person_id: uuid.UUID, purpose: str) -> ExportRead:
    """The union of what the caller's organisation may see of the person, never more: the
    DPO's role widens the purpose of the reading, not the categories (``Purpose.EXPORT``)."""
    row = await followed(ctx, person_id, Action.EXPORT_PEOPLE)
    session = ctx.store.session
    found = (await access.grants(session, ctx.scope, [person_id], purpose=Purpose.EXPORT))[
        person_id
    ]
    categories: frozenset[DataCategory] = frozenset().union(*(g.categories for g in found))
    if not categories:
        raise NotFound(detail="No such person.")
    ctx.scope.require(Action.EXPORT_PEOPLE)
    decrypt = ctx.nir.decrypt
    sensitive = await ctx.orgs.sensitive_competences()
    team = shown_members(ctx, await ctx.store.team(person_id), sensitive)
    note_competences = access.competences_granting(found, DataCategory.NOTES)
    sections: dict[str, list[dict[str, Any]]] = {
        "household": _rows(await ctx.store.household(person_id), decrypt)
        if DataCategory.HOUSEHOLD in categories
        else [],
        "budget": _rows(await ctx.store.budget(person_id), decrypt)
        if DataCategory.RESOURCES in categories
        else [],
        "care_team": [rules.export_row(m.fields(), decrypt) for m in team],
        "notes": [
            rules.export_row(n.fields(), decrypt)
            for n in await ctx.store.notes(person_id, note_competences)
        ],
        "consents": _rows(await ctx.store.consents(person_id), decrypt),
        "access_requests": _rows(await ctx.store.access_requests(person_id), decrypt),
    }
    access_log = await _whole_access_log(ctx, person_id)
    await ctx.audit.record(
        "beneficiary.export",
        "beneficiary",
        str(person_id),
        beneficiary_id=person_id,
        purpose=purpose,
    )
    return ExportRead(
        beneficiary_id=person_id,
        generated_at=clock.now(),
        purpose=purpose,
        record=shape(ctx, row, categories),
        access_log=access_log,
        other={},
        **sections,
    )
