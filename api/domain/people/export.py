"""Right of access (domain.md §11, RGPD art. 15): one export of everything held about a
person across partners, produced for the DPO of an organisation in the person's care team,
for a stated purpose (audited). The rows come from every table referring to the person,
found in the catalogue (``person_export``), so tables added later are exported too."""

from __future__ import annotations

import uuid
from typing import Any

from api.auth.permissions import Action
from api.domain import clock
from api.domain.audit.service import read_access_log
from api.domain.catalogue import DataCategory
from api.domain.people import rules
from api.domain.people.service import People, _shape, followed
from api.schemas.audit import AccessLogItem
from api.schemas.people import ExportRead

# table.column → section of the export; any other table goes to ``other``
_SECTIONS = {
    "household_member.beneficiary_id": "household",
    "budget_line.beneficiary_id": "budget",
    "care_team_membership.beneficiary_id": "care_team",
    "note.beneficiary_id": "notes",
    "consent.beneficiary_id": "consents",
    "access_request.beneficiary_id": "access_requests",
}
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


async def export(ctx: People, person_id: uuid.UUID, purpose: str) -> ExportRead:
    row = await followed(ctx, person_id, Action.EXPORT_PEOPLE)
    ctx.scope.require(Action.EXPORT_PEOPLE)
    sections: dict[str, list[dict[str, Any]]] = {name: [] for name in _SECTIONS.values()}
    other: dict[str, list[dict[str, Any]]] = {}
    for found in await ctx.store.export(person_id):
        key = f"{found.table_name}.{found.column_name}"
        rows = [rules.export_row(r, ctx.nir.decrypt) for r in found.rows]
        if found.via is None and key in _SECTIONS:
            sections[_SECTIONS[key]] = rows
        elif rows:
            other[f"{key}<{found.via}" if found.via else key] = rows
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
        record=_shape(ctx, row, frozenset(DataCategory)),
        access_log=access_log,
        other=other,
        **sections,
    )
