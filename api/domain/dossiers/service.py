"""Legal-aid dossiers through the API: a partner following the person for the prestation
instructs (creates, fills the instruction, submits); the legal holder reviews, decides
(``decideur`` role) and notifies. Every read and write is audited and every change announced
to both sides in the same transaction."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import access
from api.auth.permissions import Action
from api.auth.scope import Scope
from api.domain import clock
from api.domain.actors import event_actor
from api.domain.audit.repository import AuditLog
from api.domain.catalogue import LEGAL_AID_PRESTATIONS, DataCategory
from api.domain.changes.repository import ChangeLog
from api.domain.dossiers.problems import FieldNotOwned
from api.domain.dossiers.repository import DossierStore
from api.domain.dossiers.rules import (
    DECISION_FIELDS,
    INSTRUCTION_OPEN,
    DecisionValues,
    DossierAction,
    DossierStatus,
    Side,
    allowed_actions,
    apply_action,
    check_decision,
    owner_label,
    sides_of,
    unowned,
)
from api.domain.dossiers.schemas import (
    DecideBody,
    DecisionRead,
    DossierActionBody,
    DossierCreate,
    DossierEventRead,
    DossierRead,
    DossierSummary,
    DossierUpdate,
    ExternalRef,
    ExternalRefRead,
    Instruction,
)
from api.domain.organisations.repository import OrganisationStore
from api.domain.organisations.schemas import OrganisationRef
from api.domain.people import service as people
from api.http.schemas import Page, decode_keyset, encode_cursor
from api.problems import (
    Conflict,
    FieldError,
    Forbidden,
    NotFound,
    PreconditionFailed,
    ValidationFailed,
)


@dataclass(frozen=True)
class Dossiers:
    """What the use cases need, built by the router for one request."""

    scope: Scope
    store: DossierStore
    people: people.People
    orgs: OrganisationStore
    audit: AuditLog
    changes: ChangeLog


def etag(version: int) -> str:
    return f'"{version}"'


def actor(scope: Scope, channel: str) -> dict[str, Any]:
    return {**event_actor(scope), "channel": channel}


# visibility ---------------------------------------------------------------------------------


async def dossier_categories(
    session: AsyncSession, scope: Scope, rows: Sequence[Any]
) -> dict[uuid.UUID, frozenset[DataCategory]]:
    """What the caller may read of each dossier's person *for its prestation*, asked of the
    access rule (``api.auth.access.record_categories``): a dossier is visible when that
    holds ``dossiers``. One query whatever the number of rows (each row: ``id``,
    ``beneficiary_id``, ``prestation``)."""
    return await access.record_categories(
        session, scope, {r.id: (r.beneficiary_id, r.prestation) for r in rows}
    )


async def visible_ids(ctx: Dossiers, rows: Sequence[Any]) -> set[uuid.UUID]:
    categories = await dossier_categories(ctx.people.store.session, ctx.scope, rows)
    return {d for d, found in categories.items() if DataCategory.DOSSIERS in found}


async def _visible(ctx: Dossiers, dossier_id: uuid.UUID, *, for_update: bool = False) -> Any:
    row = await ctx.store.get(dossier_id, for_update=for_update)
    if row is None or row.id not in await visible_ids(ctx, [row]):
        raise NotFound(detail="No such dossier.")
    return row


def caller_actions(scope: Scope, status: DossierStatus, sides: frozenset[Side]) -> list[str]:
    """The lifecycle actions the caller's sides and role permit now."""
    permitted = []
    for action in allowed_actions(status, sides):
        needed = Action.DECIDE if action == DossierAction.DECIDE else Action.INSTRUCT_DOSSIERS
        if scope.permits(needed):
            permitted.append(action)
    return permitted


def decision_of(row: Any) -> DecisionValues | None:
    if row.decision is None:
        return None
    return DecisionValues(
        decision=row.decision,
        amount=row.amount,
        start_on=row.start_on,
        end_on=row.end_on,
        reason=row.decision_reason,
        decided_on=row.decided_on,
    )


async def _shape(ctx: Dossiers, row: Any) -> DossierRead:
    sides = sides_of(
        ctx.scope.organisation_id, row.instructing_organisation_id, row.deciding_organisation_id
    )
    return DossierRead(
        id=row.id,
        beneficiary_id=row.beneficiary_id,
        prestation=row.prestation,
        status=row.status,
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
        decision=DecisionRead(
            decision=row.decision,
            amount=row.amount,
            start_on=row.start_on,
            end_on=row.end_on,
            reason=row.decision_reason,
            decided_on=row.decided_on,
        )
        if row.decision
        else None,
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
    row = await _visible(ctx, dossier_id)
    if audit:
        await ctx.audit.record(
            "dossier.read", "dossier", str(row.id), beneficiary_id=row.beneficiary_id
        )
    return await _shape(ctx, row), etag(row.version)


def summary(row: Any) -> DossierSummary:
    return DossierSummary(
        id=row.id,
        beneficiary_id=row.beneficiary_id,
        prestation=row.prestation,
        status=row.status,
        instructing_organisation_id=row.instructing_organisation_id,
        deciding_organisation_id=row.deciding_organisation_id,
        decision=row.decision,
        updated_at=row.updated_at,
    )


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
    visible = await visible_ids(ctx, shown)
    # followed, but no longer held there or not in the caller's categories: left out
    items = [summary(r) for r in shown if r.id in visible]
    if items:
        await ctx.audit.record("dossier.list", "dossier", None)
    next_cursor = encode_cursor([str(shown[-1].id)]) if len(rows) > limit else None
    return Page[DossierSummary](items=items, next_cursor=next_cursor)


# instruction --------------------------------------------------------------------------------


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
        if taken.get((r.system, r.id), dossier_id) != dossier_id
    ]


async def create(ctx: Dossiers, body: DossierCreate) -> tuple[DossierRead, str]:
    scope = ctx.scope
    person, _ = await people.visible_person(ctx.people, body.beneficiary_id)
    scope.require(Action.INSTRUCT_DOSSIERS)
    catalogue = {r.code for r in await ctx.orgs.competences()}
    commune = person.commune_code
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
    assert commune is not None  # an error above otherwise
    holders = (await ctx.store.legal_holders([body.prestation], [commune])).get(
        (body.prestation, commune), []
    )
    if not holders:
        raise ValidationFailed(
            detail=f"Nobody holds {body.prestation} by law on commune {commune}.",
            errors=[FieldError("/prestation", "No legal holder to decide.")],
        )
    taken = await _refs_taken(ctx, body.external_refs, "/external_refs", None)
    if taken:
        raise Conflict(detail=taken[0].detail, errors=taken)
    dossier_id = uuid.uuid4()
    probe = SimpleNamespace(
        id=dossier_id, beneficiary_id=person.id, prestation=body.prestation, commune_code=commune
    )
    if dossier_id not in await visible_ids(ctx, [probe]):
        # attached for the prestation, but that access does not cover dossiers
        raise Forbidden(detail="Your access to this person does not cover dossiers.")
    now = clock.now()
    await ctx.store.insert_dossiers(
        [
            {
                "id": dossier_id,
                "beneficiary_id": person.id,
                "prestation": body.prestation,
                "instructing_organisation_id": scope.organisation_id,
                "deciding_organisation_id": holders[0],
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
        dossier_id, person.id, [(r.system, r.id) for r in body.external_refs], now
    )
    await ctx.store.insert_events(
        [
            {
                "dossier_id": dossier_id,
                "beneficiary_id": person.id,
                "at": now,
                "action": "create",
                "to_status": DossierStatus.DRAFT,
                **actor(scope, "api"),
            }
        ]
    )
    await ctx.audit.record("dossier.create", "dossier", str(dossier_id), beneficiary_id=person.id)
    await ctx.changes.record(
        type="dossier",
        resource_id=dossier_id,
        action="created",
        event="dossier.created",
        audience=audience_of(scope.organisation_id, holders[0]),
        status=DossierStatus.DRAFT,
    )
    return await read(ctx, dossier_id, audit=False)


def audience_of(*organisations: uuid.UUID) -> list[uuid.UUID]:
    return sorted(set(organisations))


async def update(
    ctx: Dossiers, dossier_id: uuid.UUID, body: DossierUpdate, if_match: str
) -> tuple[DossierRead, str]:
    """Owned fields only (403 ``field-not-owned`` naming the others); the instruction until
    the decision, a decision correction before notification."""
    scope = ctx.scope
    row = await _visible(ctx, dossier_id, for_update=True)
    sides = sides_of(
        scope.organisation_id, row.instructing_organisation_id, row.deciding_organisation_id
    )
    if not sides:
        raise Forbidden(detail="Only the instructing and the deciding organisations edit it.")
    changes = body.model_dump(exclude_unset=True)
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
    if if_match != etag(row.version):
        raise PreconditionFailed(detail="The dossier changed since you read it.")

    status = DossierStatus(row.status)
    now = clock.now()
    values: dict[str, Any] = {}
    if "instruction" in changes:
        instruction = body.instruction.stored() if body.instruction else {}
        if instruction != row.instruction:
            if status not in INSTRUCTION_OPEN:
                raise Conflict(
                    detail=f"The instruction no longer changes once the dossier is {status}.",
                    errors=[FieldError("/instruction", "Closed once decided.")],
                )
            values.update(instruction=instruction, instruction_updated_at=now)
    if DECISION_FIELDS & changes.keys():
        if "decision" in changes and changes["decision"] is None:
            raise ValidationFailed(
                detail="A decision is corrected, never removed.",
                errors=[FieldError("/decision", "Required.")],
            )
        stored = decision_of(row)
        if status is not DossierStatus.DECIDED or stored is None:
            raise Conflict(
                detail="A decision is corrected while decided, before it is notified.",
                errors=[FieldError(f"/{n}", "Not correctable now.") for n in sorted(fields)],
            )
        corrected = DecisionValues(
            decision=changes.get("decision", stored.decision),
            amount=changes.get("amount", stored.amount),
            start_on=changes.get("start_on", stored.start_on),
            end_on=changes.get("end_on", stored.end_on),
            reason=changes.get("decision_reason", stored.reason),
            decided_on=stored.decided_on,
        )
        errors = [
            FieldError("/decision_reason" if e.pointer == "/reason" else e.pointer, e.detail)
            for e in check_decision(corrected)
        ]
        if errors:
            raise ValidationFailed(detail=errors[0].detail, errors=errors)
        if corrected != stored:
            values.update(corrected.columns(), decision_updated_at=now)
    refs_changed = False
    if body.external_refs is not None:
        refs = body.external_refs
        errors = _duplicate_refs(refs, "/external_refs")
        if errors:
            raise ValidationFailed(detail=errors[0].detail, errors=errors)
        taken = await _refs_taken(ctx, refs, "/external_refs", row.id)
        if taken:
            raise Conflict(detail=taken[0].detail, errors=taken)
        own = {
            (r.system, r.external_id)
            for r in await ctx.store.refs([row.id])
            if r.organisation_id == scope.organisation_id
        }
        wanted = [(r.system, r.id) for r in refs]
        if own != set(wanted):
            await ctx.store.replace_own_refs(row.id, row.beneficiary_id, wanted, now)
            refs_changed = True
    if not values and not refs_changed:
        return await read(ctx, row.id, audit=False)
    if not await ctx.store.update(row.id, row.version, {**values, "updated_at": now}):
        raise PreconditionFailed(detail="The dossier changed since you read it.")
    await ctx.store.insert_events(
        [
            {
                "dossier_id": row.id,
                "beneficiary_id": row.beneficiary_id,
                "at": now,
                "action": "update",
                **actor(scope, "api"),
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
    return await read(ctx, row.id, audit=False)


# the lifecycle ----------------------------------------------------------------------------


async def act(
    ctx: Dossiers,
    dossier_id: uuid.UUID,
    action: DossierAction,
    body: DossierActionBody | DecideBody,
    if_match: str | None,
) -> tuple[DossierRead, str]:
    """One transition, by the side it belongs to (rules.py); deciding takes the ``decideur``
    role and a holding by law on the person's commune now."""
    scope = ctx.scope
    row = await _visible(ctx, dossier_id, for_update=True)
    if if_match is not None and if_match != etag(row.version):
        raise PreconditionFailed(detail="The dossier changed since you read it.")
    sides = sides_of(
        scope.organisation_id, row.instructing_organisation_id, row.deciding_organisation_id
    )
    status = DossierStatus(row.status)
    target = apply_action(status, action, sides)
    now = clock.now()
    values: dict[str, Any] = {"status": target, "status_changed_at": now, "updated_at": now}
    comment = None
    if action is DossierAction.DECIDE:
        scope.require(Action.DECIDE)
        holding = scope.holding(row.prestation, row.commune_code) if row.commune_code else None
        if holding is None or holding.source != "law":
            raise Forbidden(detail="Only a legal holder of the prestation decides (by law).")
        assert isinstance(body, DecideBody)
        decision = DecisionValues(
            decision=body.decision,
            amount=body.amount,
            start_on=body.start_on,
            end_on=body.end_on,
            reason=body.reason,
            decided_on=clock.today(),
        )
        errors = check_decision(decision)
        if errors:
            raise ValidationFailed(detail=errors[0].detail, errors=errors)
        values.update(decision.columns(), decision_updated_at=now)
        comment = body.reason
    else:
        scope.require(Action.INSTRUCT_DOSSIERS)
        assert isinstance(body, DossierActionBody)
        comment = body.comment
    if not await ctx.store.update(row.id, row.version, values):
        raise PreconditionFailed(detail="The dossier changed since you read it.")
    if action is DossierAction.SUBMIT:
        await join_decider(ctx, [row])
    await ctx.store.insert_events(
        [
            {
                "dossier_id": row.id,
                "beneficiary_id": row.beneficiary_id,
                "at": now,
                "action": str(action),
                "from_status": status,
                "to_status": target,
                "comment": comment,
                **actor(scope, "api"),
            }
        ]
    )
    await ctx.audit.record(
        f"dossier.{action}", "dossier", str(row.id), beneficiary_id=row.beneficiary_id
    )
    await ctx.changes.record(
        type="dossier",
        resource_id=row.id,
        action="status_changed",
        event="dossier.status_changed",
        audience=audience_of(row.instructing_organisation_id, row.deciding_organisation_id),
        status=target,
    )
    return await read(ctx, row.id, audit=False)


async def join_decider(ctx: Dossiers, rows: Sequence[Any]) -> None:
    """A submitted dossier brings its deciding organisation into the person's care team for
    the prestation (row-level security lets the instructing organisation write exactly that
    membership)."""
    wanted = {
        (r.beneficiary_id, r.deciding_organisation_id, r.prestation)
        for r in rows
        if r.deciding_organisation_id != ctx.scope.organisation_id
    }
    if not wanted:
        return
    present = await ctx.store.memberships([w[0] for w in wanted], [w[1] for w in wanted])
    now = clock.now()
    await ctx.store.join_teams(
        [
            {
                "id": uuid.uuid4(),
                "beneficiary_id": person,
                "organisation_id": organisation,
                "competence": prestation,
                "team_role": "member",
                "source": "dossier",
                "started_at": now,
            }
            for person, organisation, prestation in sorted(wanted - present)
        ]
    )
