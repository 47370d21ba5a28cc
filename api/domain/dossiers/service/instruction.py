"""Instructing a dossier: a partner following the person for the prestation opens a draft,
and either side edits the fields it owns (the instruction, a decision correction, its own
external references)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from api.auth.permissions import Action
from api.auth.scope import Scope
from api.domain import clock
from api.domain.catalogue import LEGAL_AID_PRESTATIONS
from api.domain.dossiers.problems import FieldNotOwned
from api.domain.dossiers.repository import StoredDossier
from api.domain.dossiers.rules import (
    DECISION_FIELDS,
    INSTRUCTION_OPEN,
    DossierStatus,
    owner_label,
    sides_of,
    unowned,
)
from api.domain.dossiers.schemas import DossierCreate, DossierRead, DossierUpdate, ExternalRef
from api.domain.dossiers.service.context import Dossiers, actor, audience_of, etag
from api.domain.dossiers.service.decision import corrected_columns
from api.domain.dossiers.service.reads import read
from api.domain.dossiers.service.visibility import visible, visible_ids
from api.domain.people import service as people
from api.problems import (
    Conflict,
    FieldError,
    Forbidden,
    PreconditionFailed,
    ValidationFailed,
)

# references -----------------------------------------------------------------------------------


def _duplicate_refs(refs: Sequence[ExternalRef], pointer: str) -> list[FieldError]:
    seen: set[tuple[str, str]] = set()
    errors = []
    for i, ref in enumerate(refs):
        key = (ref.system, ref.id)
        if key in seen:
            errors.append(FieldError(f"{pointer}/{i}", "Listed twice."))
        seen.add(key)
    return errors


async def _refs_taken(
    ctx: Dossiers, refs: Sequence[ExternalRef], pointer: str, dossier_id: uuid.UUID | None
) -> list[FieldError]:
    taken = await ctx.store.own_refs((r.system, r.id) for r in refs)
    return [
        FieldError(f"{pointer}/{i}", "Your organisation already gave this reference to a dossier.")
        for i, r in enumerate(refs)
        if (found := taken.get((r.system, r.id))) is not None and found.dossier_id != dossier_id
    ]


# creation -------------------------------------------------------------------------------------


async def _checked_commune(ctx: Dossiers, body: DossierCreate, person: Any) -> str:
    """The person's commune, once the caller may instruct the prestation for them there."""
    scope = ctx.scope
    catalogue = {r.code for r in await ctx.orgs.competences()}
    commune: str | None = person.commune_code
    errors: list[FieldError] = []
    if body.prestation not in LEGAL_AID_PRESTATIONS or body.prestation not in catalogue:
        errors.append(FieldError("/prestation", f"{body.prestation!r} is no legal-aid prestation."))
    elif commune is None:
        errors.append(FieldError("/beneficiary_id", "The person has no commune of residence."))
    elif not scope.holds(body.prestation, commune):
        errors.append(
            FieldError("/prestation", f"Your organisation does not hold {body.prestation} there.")
        )
    else:
        followed = {m.competence for m in await ctx.people.store.own_memberships([person.id])}
        if body.prestation not in followed:
            errors.append(
                FieldError("/prestation", f"You do not follow this person for {body.prestation}.")
            )
    errors += _duplicate_refs(body.external_refs, "/external_refs")
    if errors:
        raise ValidationFailed(detail=errors[0].detail, errors=errors)
    assert commune is not None
    return commune


async def _legal_holder(ctx: Dossiers, prestation: str, commune: str) -> uuid.UUID:
    """The organisation that decides: the first holder of the prestation by law there."""
    holders = (await ctx.store.legal_holders([prestation], [commune])).get(
        (prestation, commune), []
    )
    if not holders:
        raise ValidationFailed(
            detail=f"Nobody holds {prestation} by law on commune {commune}.",
            errors=[FieldError("/prestation", "No legal holder to decide.")],
        )
    return holders[0]


async def create(ctx: Dossiers, body: DossierCreate) -> tuple[DossierRead, str]:
    scope = ctx.scope
    person, _ = await people.visible_person(ctx.people, body.beneficiary_id)
    scope.require(Action.INSTRUCT_DOSSIERS)
    commune = await _checked_commune(ctx, body, person)
    deciding_id = await _legal_holder(ctx, body.prestation, commune)
    taken = await _refs_taken(ctx, body.external_refs, "/external_refs", None)
    if taken:
        raise Conflict(detail=taken[0].detail, errors=taken)
    dossier_id = uuid.uuid4()
    if dossier_id not in await visible_ids(ctx, {dossier_id: (person.id, body.prestation)}):
        # attached for the prestation, but that access does not cover dossiers
        raise Forbidden(detail="Your access to this person does not cover dossiers.")
    await _insert_draft(ctx, body, dossier_id, person.id, deciding_id)
    return await read(ctx, dossier_id, audit=False)


async def _insert_draft(
    ctx: Dossiers,
    body: DossierCreate,
    dossier_id: uuid.UUID,
    person_id: uuid.UUID,
    deciding_id: uuid.UUID,
) -> None:
    """The draft with its references and first event, audited and announced to both sides."""
    scope, now = ctx.scope, clock.now()
    await ctx.store.insert_dossiers(
        [
            {
                "id": dossier_id,
                "beneficiary_id": person_id,
                "prestation": body.prestation,
                "instructing_organisation_id": scope.organisation_id,
                "deciding_organisation_id": deciding_id,
                "status": DossierStatus.DRAFT,
                "instruction": body.instruction.stored() if body.instruction else {},
                "instruction_updated_at": now,
                "status_changed_at": now,
                "version": 1,
                "created_at": now,
                "updated_at": now,
            }
        ]
    )
    await ctx.store.replace_own_refs(
        dossier_id, person_id, [(r.system, r.id) for r in body.external_refs], now
    )
    await ctx.store.insert_events(
        [
            {
                "dossier_id": dossier_id,
                "beneficiary_id": person_id,
                "at": now,
                "action": "create",
                "to_status": DossierStatus.DRAFT,
                **actor(scope, "api"),
            }
        ]
    )
    await ctx.audit.record("dossier.create", "dossier", str(dossier_id), beneficiary_id=person_id)
    await ctx.changes.record(
        type="dossier",
        resource_id=dossier_id,
        action="created",
        event="dossier.created",
        audience=audience_of(scope.organisation_id, deciding_id),
        status=DossierStatus.DRAFT,
    )


# edits ----------------------------------------------------------------------------------------


def _editable_fields(scope: Scope, row: StoredDossier, changes: dict[str, Any]) -> list[str]:
    """The dossier fields the edit names, once the caller's sides own them and its role
    permits writing them (403 otherwise; ``field-not-owned`` names the others' fields)."""
    sides = sides_of(
        scope.organisation_id, row.instructing_organisation_id, row.deciding_organisation_id
    )
    if not sides:
        raise Forbidden(detail="Only the instructing and the deciding organisations edit it.")
    fields = [name for name in changes if name != "external_refs"]
    foreign = unowned(fields, sides)
    if foreign:
        raise FieldNotOwned(
            detail=f"Not yours to write: {', '.join(foreign)}.",
            errors=[FieldError(f"/{name}", owner_label(name)) for name in foreign],
        )
    if "instruction" in changes:
        scope.require(Action.INSTRUCT_DOSSIERS)
    if DECISION_FIELDS & changes.keys():
        scope.require(Action.DECIDE)
    if not fields:
        scope.require(Action.INSTRUCT_DOSSIERS)
    return fields


def _instruction_columns(row: StoredDossier, body: DossierUpdate, now: datetime) -> dict[str, Any]:
    """The instruction columns the edit writes: none when unchanged, refused once decided."""
    instruction = body.instruction.stored() if body.instruction else {}
    if instruction == row.instruction:
        return {}
    status = DossierStatus(row.status)
    if status not in INSTRUCTION_OPEN:
        raise Conflict(
            detail=f"The instruction no longer changes once the dossier is {status}.",
            errors=[FieldError("/instruction", "Closed once decided.")],
        )
    return {"instruction": instruction, "instruction_updated_at": now}


async def _replace_own_refs(
    ctx: Dossiers, row: StoredDossier, refs: Sequence[ExternalRef], now: datetime
) -> bool:
    """Replace the references the caller's organisation recorded; whether they changed."""
    errors = _duplicate_refs(refs, "/external_refs")
    if errors:
        raise ValidationFailed(detail=errors[0].detail, errors=errors)
    taken = await _refs_taken(ctx, refs, "/external_refs", row.id)
    if taken:
        raise Conflict(detail=taken[0].detail, errors=taken)
    own = {
        (r.system, r.external_id)
        for r in await ctx.store.refs([row.id])
        if r.organisation_id == ctx.scope.organisation_id
    }
    wanted = [(r.system, r.id) for r in refs]
    if own == set(wanted):
        return False
    await ctx.store.replace_own_refs(row.id, row.beneficiary_id, wanted, now)
    return True


async def update(
    ctx: Dossiers, dossier_id: uuid.UUID, body: DossierUpdate, if_match: str
) -> tuple[DossierRead, str]:
    """Owned fields only (403 ``field-not-owned`` naming the others); the instruction until
    the decision, a decision correction before notification."""
    row = await visible(ctx, dossier_id, for_update=True)
    changes = body.model_dump(exclude_unset=True)
    fields = _editable_fields(ctx.scope, row, changes)
    if if_match != etag(row.version):
        raise PreconditionFailed(detail="The dossier changed since you read it.")
    now = clock.now()
    values: dict[str, Any] = {}
    if "instruction" in changes:
        values.update(_instruction_columns(row, body, now))
    if DECISION_FIELDS & changes.keys():
        values.update(corrected_columns(row, changes, fields, now))
    refs_changed = False
    if body.external_refs is not None:
        refs_changed = await _replace_own_refs(ctx, row, body.external_refs, now)
    if not values and not refs_changed:
        return await read(ctx, row.id, audit=False)
    if not await ctx.store.update(row.id, row.version, {**values, "updated_at": now}):
        raise PreconditionFailed(detail="The dossier changed since you read it.")
    await _record_edit(ctx, row, now)
    return await read(ctx, row.id, audit=False)


async def _record_edit(ctx: Dossiers, row: StoredDossier, now: datetime) -> None:
    await ctx.store.insert_events(
        [
            {
                "dossier_id": row.id,
                "beneficiary_id": row.beneficiary_id,
                "at": now,
                "action": "update",
                **actor(ctx.scope, "api"),
            }
        ]
    )
    await ctx.audit.record(
        "dossier.update", "dossier", str(row.id), beneficiary_id=row.beneficiary_id
    )
    await ctx.changes.record(
        type="dossier",
        resource_id=row.id,
        action="updated",
        event="dossier.updated",
        audience=audience_of(row.instructing_organisation_id, row.deciding_organisation_id),
        status=row.status,
    )
