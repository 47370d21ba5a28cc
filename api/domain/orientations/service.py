"""Orientations: a partner holding a competence decides that a person should be followed by
another for it (e.g. the département orients an RSA beneficiary to a CCAS référent).

The target sees the person's identity, contact and situation while the orientation is
proposed, joins the care team when it accepts, and a person has at most one accepted
orientation per competence: accepting a new one ends the previous (réorientation), whose
history stays readable by the care team.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError

from api.auth.permissions import Action
from api.auth.scope import Scope
from api.domain import clock
from api.domain.actors import event_actor
from api.domain.audit.repository import AuditLog
from api.domain.catalogue import DataCategory
from api.domain.changes.repository import ChangeLog
from api.domain.organisations.repository import OrganisationStore
from api.domain.organisations.schemas import OrganisationRef
from api.domain.orientations.repository import (
    OrientationEventRow,
    OrientationStore,
    PartiesOfOrientation,
)
from api.domain.orientations.rules import (
    CATEGORISED,
    PROPOSAL_CATEGORIES,
    REORIENTATION,
    OrientationAction,
    OrientationSide,
    OrientationStatus,
    allowed_orientation_actions,
    apply_orientation_action,
)
from api.domain.orientations.schemas import (
    OrientationActionBody,
    OrientationCreate,
    OrientationEventRead,
    OrientationRead,
)
from api.domain.orientations.tables import Orientation
from api.domain.people import service as people
from api.domain.referrals.service.counterparts import check_competence, resolve_counterpart
from api.http.schemas import Page, as_instant, decode_keyset, encode_cursor
from api.problems import Conflict, FieldError, Forbidden, NotFound, ValidationFailed


@dataclass(frozen=True)
class Orientations:
    """What the use cases need, built by ``deps.py`` for one request."""

    scope: Scope
    store: OrientationStore
    orgs: OrganisationStore
    people: people.People
    audit: AuditLog
    changes: ChangeLog


def _side(scope: Scope, orientation: Orientation) -> OrientationSide | None:
    if orientation.target_organisation_id == scope.organisation_id:
        return OrientationSide.TARGET
    if orientation.issuer_organisation_id == scope.organisation_id:
        return OrientationSide.ISSUER
    return None  # a care-team member reading the history


async def issue(ctx: Orientations, body: OrientationCreate) -> OrientationRead:
    scope = ctx.scope
    scope.require(Action.SEND_REFERRALS)
    target = await _checked_target(ctx, body)
    now = clock.now()
    orientation_id = uuid.uuid4()
    await ctx.store.insert(
        {
            "id": orientation_id,
            "beneficiary_id": body.beneficiary_id,
            "competence": body.competence,
            "issuer_organisation_id": scope.organisation_id,
            "issuer_user_id": scope.user_id,
            "issuer_client_id": scope.client_id,
            "target_organisation_id": target,
            "category": body.category,
            "reason": body.reason,
            "referent_user_id": body.referent_user_id,
            "status": OrientationStatus.PROPOSED,
            "created_at": now,
            "updated_at": now,
        }
    )
    await ctx.store.add_event(
        {
            "orientation_id": orientation_id,
            "at": now,
            "to_status": OrientationStatus.PROPOSED,
            **event_actor(scope),
        }
    )
    await ctx.people.store.join(
        {
            "id": uuid.uuid4(),
            "beneficiary_id": body.beneficiary_id,
            "organisation_id": target,
            "competence": body.competence,
            "team_role": "member",
            "source": "orientation",
            "granted_categories": PROPOSAL_CATEGORIES,
            "started_at": now,
            "origin_id": orientation_id,
        }
    )
    await ctx.audit.record(
        "orientation.issue", "orientation", str(orientation_id), beneficiary_id=body.beneficiary_id
    )
    await ctx.changes.record(
        type="orientation",
        resource_id=orientation_id,
        action="created",
        event="orientation.created",
        audience=[scope.organisation_id, target],
        status=OrientationStatus.PROPOSED,
    )
    return await read(ctx, orientation_id, audit=False)


async def _checked_target(ctx: Orientations, body: OrientationCreate) -> uuid.UUID:
    """The target, once the caller is shown to hold the competence on the person's commune
    and every field error is gathered."""
    scope = ctx.scope
    person, _ = await people.visible_person(ctx.people, body.beneficiary_id)
    commune = person.commune_code
    errors: list[FieldError] = []
    await check_competence(ctx.orgs, scope, body.competence)
    if commune is None or not scope.holds(body.competence, commune):
        raise ValidationFailed(
            detail=f"Your organisation does not hold {body.competence} on this person's commune.",
            errors=[FieldError("/competence", "Only a holder of the competence orients.")],
        )
    if body.category is not None and body.competence not in CATEGORISED:
        errors.append(FieldError("/category", "Only RSA and insertion orientations have one."))
    target = await resolve_counterpart(
        ctx.orgs,
        competence=body.competence,
        commune=commune,
        named=body.target_organisation_id,
        excluded={scope.organisation_id},
        pointer="/target_organisation_id",
    )
    if body.referent_user_id is not None and not await ctx.store.is_member(
        target, body.referent_user_id
    ):
        errors.append(FieldError("/referent_user_id", "Not a member of the target organisation."))
    if errors:
        raise ValidationFailed(detail=errors[0].detail, errors=errors)
    return target


async def _get(
    ctx: Orientations, orientation_id: uuid.UUID, *, for_update: bool = False
) -> PartiesOfOrientation:
    """The orientation if the caller is a party, or reads the person's orientations as a
    member of their care team (404 otherwise); its role must cover orientations (403)."""
    found = await ctx.store.get(orientation_id, for_update=for_update)
    if found is None:
        raise NotFound(detail="No such orientation.")
    if _side(ctx.scope, found.orientation) is None:
        try:
            _, categories = await people.visible_person(
                ctx.people, found.orientation.beneficiary_id
            )
        except NotFound:
            categories = frozenset()
        if DataCategory.ORIENTATIONS not in categories:
            raise NotFound(detail="No such orientation.")
    _require_orientations(ctx.scope)
    return found


def _require_orientations(scope: Scope) -> None:
    if DataCategory.ORIENTATIONS not in scope.categories:
        raise Forbidden(detail="Your role does not cover orientations.")


def _shape(
    ctx: Orientations, found: PartiesOfOrientation, events: list[OrientationEventRow]
) -> OrientationRead:
    o = found.orientation
    side = _side(ctx.scope, o)
    return OrientationRead(
        id=o.id,
        beneficiary_id=o.beneficiary_id,
        competence=o.competence,
        issuer=OrganisationRef.model_validate(found.issuer, from_attributes=True),
        target=OrganisationRef.model_validate(found.target, from_attributes=True),
        category=o.category,
        reason=o.reason,
        referent_user_id=o.referent_user_id,
        previous_orientation_id=o.previous_orientation_id,
        status=o.status,
        created_at=o.created_at,
        updated_at=o.updated_at,
        allowed_actions=allowed_orientation_actions(OrientationStatus(o.status), side)
        if side
        else [],
        events=[OrientationEventRead.model_validate(e, from_attributes=True) for e in events],
    )


async def read(
    ctx: Orientations, orientation_id: uuid.UUID, *, audit: bool = True
) -> OrientationRead:
    found = await _get(ctx, orientation_id)
    o = found.orientation
    if audit:
        await ctx.audit.record(
            "orientation.read", "orientation", str(o.id), beneficiary_id=o.beneficiary_id
        )
    events = await ctx.store.events([o.id])
    return _shape(ctx, found, events.get(o.id, []))


async def page(
    ctx: Orientations,
    *,
    box: str | None,
    status: str | None,
    beneficiary_id: uuid.UUID | None,
    cursor: str | None,
    limit: int,
) -> Page[OrientationRead]:
    _require_orientations(ctx.scope)
    after = decode_keyset(cursor, as_instant, uuid.UUID)
    if box is None and beneficiary_id is not None:
        # the person's history: only for whoever may read their orientations
        _, categories = await people.visible_person(ctx.people, beneficiary_id)
        if DataCategory.ORIENTATIONS not in categories:
            raise Forbidden(detail="Your access to this person does not cover orientations.")
    rows = await ctx.store.page(
        box=box, status=status, beneficiary_id=beneficiary_id, after=after, limit=limit
    )
    items = rows[:limit]
    events = await ctx.store.events([r.orientation.id for r in items]) if items else {}
    for person in {r.orientation.beneficiary_id for r in items}:
        await ctx.audit.record("orientation.list", "orientation", None, beneficiary_id=person)
    next_cursor = (
        encode_cursor([items[-1].orientation.created_at.isoformat(), str(items[-1].orientation.id)])
        if len(rows) > limit
        else None
    )
    return Page[OrientationRead](
        items=[_shape(ctx, r, events.get(r.orientation.id, [])) for r in items],
        next_cursor=next_cursor,
    )


async def act(
    ctx: Orientations, orientation_id: uuid.UUID, action: str, body: OrientationActionBody
) -> OrientationRead:
    scope = ctx.scope
    o = (await _get(ctx, orientation_id, for_update=True)).orientation
    side = _side(scope, o)
    if side is None:
        raise Forbidden(detail="Only the issuer and the target act on an orientation.")
    status = OrientationStatus(o.status)
    new_status = apply_orientation_action(status, action, side, body.reason_code, body.comment)
    verb = OrientationAction(action)
    await _check_may_act(ctx, side, verb, o)
    now = clock.now()
    values: dict[str, Any] = {"status": new_status, "updated_at": now}
    if verb is OrientationAction.ACCEPT:
        values["previous_orientation_id"] = await _end_previous(ctx, o)
    await _end_access(ctx, o.id, str(new_status), now)
    if verb is OrientationAction.ACCEPT:
        await _join_as_target(ctx, o, now)
    try:
        await ctx.store.update(o.id, values)
    except IntegrityError:
        raise Conflict(
            detail="Another orientation for this competence was accepted at the same time."
        ) from None
    await ctx.store.add_event(
        {
            "orientation_id": o.id,
            "at": now,
            "from_status": status,
            "to_status": new_status,
            "reason_code": body.reason_code,
            "comment": body.comment,
            **event_actor(scope),
        }
    )
    await ctx.audit.record(
        f"orientation.{verb.value}", "orientation", str(o.id), beneficiary_id=o.beneficiary_id
    )
    await ctx.changes.record(
        type="orientation",
        resource_id=o.id,
        action="status_changed",
        event="orientation.status_changed",
        audience=sorted({o.issuer_organisation_id, o.target_organisation_id}),
        status=new_status,
    )
    return await read(ctx, o.id, audit=False)


async def _check_may_act(
    ctx: Orientations, side: OrientationSide, verb: OrientationAction, o: Orientation
) -> None:
    """The target answers (and accepts while it holds the competence on the person's
    commune); the issuer sends."""
    scope = ctx.scope
    if side is OrientationSide.TARGET:
        scope.require(Action.ANSWER_REFERRALS)
        commune = (await people.visible_person(ctx.people, o.beneficiary_id))[0].commune_code
        if verb is OrientationAction.ACCEPT and (
            commune is None or not scope.holds(o.competence, commune)
        ):
            raise Forbidden(
                detail=f"Your organisation no longer holds {o.competence} on this commune."
            )
    else:
        scope.require(Action.SEND_REFERRALS)


async def _join_as_target(ctx: Orientations, o: Orientation, now: datetime) -> None:
    """The accepted membership outlives the proposal's: it ends with the orientation."""
    await ctx.people.store.join(
        {
            "id": uuid.uuid4(),
            "beneficiary_id": o.beneficiary_id,
            "organisation_id": ctx.scope.organisation_id,
            "competence": o.competence,
            "referent_user_id": o.referent_user_id,
            "team_role": "referent" if o.referent_user_id else "member",
            "source": "orientation",
            "started_at": now,
            "origin_id": o.id,
        }
    )


async def _end_access(ctx: Orientations, origin: uuid.UUID, reason: str, at: datetime) -> None:
    await ctx.store.end_memberships(origin, reason, at)


async def _end_previous(ctx: Orientations, o: Orientation) -> uuid.UUID | None:
    """Réorientation: the accepted orientation for this competence ends."""
    previous = await ctx.store.active(o.beneficiary_id, o.competence)
    if previous is None:
        return None
    now = clock.now()
    await ctx.store.update(previous.id, {"status": OrientationStatus.ENDED, "updated_at": now})
    await ctx.store.add_event(
        {
            "orientation_id": previous.id,
            "at": now,
            "from_status": OrientationStatus.ACCEPTED,
            "to_status": OrientationStatus.ENDED,
            "reason_code": REORIENTATION,
            "comment": None,
            **event_actor(ctx.scope),
        }
    )
    await _end_access(ctx, previous.id, REORIENTATION, now)
    await ctx.changes.record(
        type="orientation",
        resource_id=previous.id,
        action="status_changed",
        event="orientation.status_changed",
        audience=sorted({previous.issuer_organisation_id, previous.target_organisation_id}),
        status=OrientationStatus.ENDED,
    )
    return previous.id
