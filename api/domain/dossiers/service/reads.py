"""Reading dossiers: one with its references and events, or a page of summaries. Every read
of a dossier is audited."""

from __future__ import annotations

import uuid

from api.auth.permissions import Action
from api.auth.scope import Scope
from api.domain.dossiers.repository import StoredDossier
from api.domain.dossiers.rules import (
    DossierAction,
    DossierStatus,
    Side,
    allowed_actions,
    sides_of,
)
from api.domain.dossiers.schemas import (
    DecisionRead,
    DossierEventRead,
    DossierRead,
    DossierSummary,
    ExternalRefRead,
    Instruction,
)
from api.domain.dossiers.service.context import Dossiers, decision_of, etag
from api.domain.dossiers.service.visibility import visible, visible_rows
from api.domain.organisations.schemas import OrganisationRef
from api.http.schemas import Page, decode_keyset, encode_cursor


def caller_actions(scope: Scope, status: DossierStatus, sides: frozenset[Side]) -> list[str]:
    """The lifecycle actions the caller's sides and role permit now."""
    permitted = []
    for action in allowed_actions(status, sides):
        needed = Action.DECIDE if action == DossierAction.DECIDE else Action.INSTRUCT_DOSSIERS
        if scope.permits(needed):
            permitted.append(action)
    return permitted


def _decision_read(row: StoredDossier) -> DecisionRead | None:
    values = decision_of(row)
    return None if values is None else DecisionRead.model_validate(values, from_attributes=True)


async def _shape(ctx: Dossiers, row: StoredDossier) -> DossierRead:
    sides = sides_of(
        ctx.scope.organisation_id, row.instructing_organisation_id, row.deciding_organisation_id
    )
    return DossierRead(
        id=row.id,
        beneficiary_id=row.beneficiary_id,
        prestation=row.prestation,
        status=DossierStatus(row.status),
        instructing_organisation=OrganisationRef(
            id=row.instructing_organisation_id,
            name=row.instructing_name,
            kind=row.instructing_kind,
        ),
        deciding_organisation=OrganisationRef(
            id=row.deciding_organisation_id, name=row.deciding_name, kind=row.deciding_kind
        ),
        external_refs=[
            ExternalRefRead(system=r.system, id=r.external_id, organisation_id=r.organisation_id)
            for r in await ctx.store.refs([row.id])
        ],
        instruction=Instruction.model_validate(row.instruction),
        decision=_decision_read(row),
        instruction_updated_at=row.instruction_updated_at,
        decision_updated_at=row.decision_updated_at,
        status_changed_at=row.status_changed_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
        allowed_actions=caller_actions(ctx.scope, DossierStatus(row.status), sides),
        events=[
            DossierEventRead.model_validate(e, from_attributes=True)
            for e in await ctx.store.events(row.id)
        ],
    )


async def read(
    ctx: Dossiers, dossier_id: uuid.UUID, *, audit: bool = True
) -> tuple[DossierRead, str]:
    row = await visible(ctx, dossier_id)
    if audit:
        await ctx.audit.record(
            "dossier.read", "dossier", str(row.id), beneficiary_id=row.beneficiary_id
        )
    return await _shape(ctx, row), etag(row.version)


async def page(
    ctx: Dossiers,
    *,
    prestation: str | None,
    status: DossierStatus | None,
    beneficiary_id: uuid.UUID | None,
    cursor: str | None,
    limit: int,
) -> Page[DossierSummary]:
    position = decode_keyset(cursor, uuid.UUID)
    after = position[0] if position else None
    rows = await ctx.store.page(
        prestation=prestation,
        status=str(status) if status else None,
        beneficiary_id=beneficiary_id,
        after=after,
        limit=limit,
    )
    shown = rows[:limit]
    seen = await visible_rows(ctx, shown)
    # followed, but no longer held there or not in the caller's categories: left out
    items = [DossierSummary.model_validate(r, from_attributes=True) for r in shown if r.id in seen]
    if items:
        await ctx.audit.record("dossier.list", "dossier", None)
    next_cursor = encode_cursor([str(shown[-1].id)]) if len(rows) > limit else None
    return Page[DossierSummary](items=items, next_cursor=next_cursor)
