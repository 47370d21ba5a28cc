"""Conventions de délégation: proposal by the grantor, lifecycle, events."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from api.auth.permissions import Action
from api.auth.scope import Scope
from api.domain import clock
from api.domain.catalogue import CompetenceDef
from api.domain.changes.repository import ChangeLog
from api.domain.conventions.repository import ConventionStore
from api.domain.conventions.rules import (
    ConventionAction,
    ConventionSide,
    ConventionStatus,
    allowed_convention_actions,
    apply_action,
    effective_status,
    in_force,
    raise_if_invalid,
    validate_delegation,
    validate_parties,
    validate_period,
)
from api.domain.conventions.schemas import ConventionCreate, ConventionEventRead, ConventionRead
from api.domain.conventions.tables import Convention, ConventionEvent
from api.domain.organisations.repository import OrganisationStore
from api.domain.organisations.schemas import OrganisationRef
from api.http.schemas import Page, as_instant, decode_keyset, encode_cursor
from api.problems import FieldError, NotFound, ValidationFailed


@dataclass(frozen=True)
class Conventions:
    """What the use cases need, built for one request (api.domain.conventions.deps)."""

    scope: Scope
    orgs: OrganisationStore
    store: ConventionStore
    changes: ChangeLog


async def _catalogue(orgs: OrganisationStore) -> dict[str, CompetenceDef]:
    return {c.code: c for c in await orgs.competences()}


def _side(scope: Scope, row: Convention) -> ConventionSide:
    return (
        ConventionSide.GRANTOR
        if row.grantor_id == scope.organisation_id
        else ConventionSide.GRANTEE
    )


async def _read(ctx: Conventions, rows: list[Convention]) -> list[ConventionRead]:
    if not rows:
        return []
    scope, orgs = ctx.scope, ctx.orgs
    events = await ctx.store.events([r.id for r in rows])
    parties: dict[uuid.UUID, OrganisationRef] = {}
    for org_id in {r.grantor_id for r in rows} | {r.grantee_id for r in rows}:
        org = await orgs.get(org_id)
        assert org is not None
        parties[org_id] = OrganisationRef(id=org.id, name=org.name, kind=org.kind)
    today = clock.today()
    result = []
    for r in rows:
        status = effective_status(ConventionStatus(r.status), r.valid_from, r.valid_until, today)
        result.append(
            ConventionRead(
                id=r.id,
                reference=r.reference,
                grantor=parties[r.grantor_id],
                grantee=parties[r.grantee_id],
                competences=r.competences,
                communes=r.communes,
                all_communes=r.all_communes,
                data_categories=r.data_categories,
                valid_from=r.valid_from,
                valid_until=r.valid_until,
                status=status,
                in_force=in_force(ConventionStatus(r.status), r.valid_from, r.valid_until, today),
                allowed_actions=allowed_convention_actions(status, _side(scope, r))
                if scope.permits(Action.MANAGE_CONVENTIONS)
                else [],
                events=[
                    ConventionEventRead(
                        at=e.at,
                        action=e.action,
                        from_status=e.from_status,
                        to_status=e.to_status,
                        actor_user_id=e.actor_user_id,
                        actor_client_id=e.actor_client_id,
                        acting_agent=e.acting_agent,
                        organisation_id=e.actor_organisation_id,
                        reason=e.reason,
                    )
                    for e in events
                    if e.convention_id == r.id
                ],
                created_at=r.created_at,
                updated_at=r.updated_at,
            )
        )
    return result


def _event(
    scope: Scope,
    row: Convention,
    *,
    at: datetime,
    action: ConventionAction,
    from_status: ConventionStatus,
    to_status: ConventionStatus,
    reason: str | None,
) -> ConventionEvent:
    """An event of ``row``, written by the user, or the API client and the agent it declared."""
    return ConventionEvent(
        id=uuid.uuid4(),
        convention_id=row.id,
        grantor_id=row.grantor_id,
        grantee_id=row.grantee_id,
        at=at,
        action=action,
        from_status=from_status,
        to_status=to_status,
        actor_user_id=scope.user_id,
        actor_client_id=scope.client_id,
        acting_agent=scope.acting_agent,
        actor_organisation_id=scope.organisation_id,
        reason=reason,
    )


async def propose(ctx: Conventions, body: ConventionCreate) -> ConventionRead:
    scope, orgs = ctx.scope, ctx.orgs
    scope.require(Action.MANAGE_CONVENTIONS)
    grantee = await orgs.get(body.grantee_id)
    if grantee is None:
        raise ValidationFailed(
            detail="No such grantee organisation.",
            errors=[FieldError("/grantee_id", "Unknown organisation.")],
        )
    catalogue = await _catalogue(orgs)
    # The grantor holds a competence by law on its whole territory when its kind is a legal
    # holder; delegated holdings never count (a delegate cannot re-delegate).
    territory = scope.territory
    law_communes = {
        code: territory if scope.organisation_kind in definition.legal_holder_kinds else frozenset()
        for code, definition in catalogue.items()
    }
    all_communes = body.communes == "all"
    communes = sorted(territory) if all_communes else list(body.communes)
    errors = [
        *validate_parties(scope.organisation_id, body.grantee_id),
        *validate_period(body.valid_from, body.valid_until),
        *validate_delegation(
            catalogue,
            scope.organisation_kind,
            grantee.kind,
            body.competences,
            communes,
            law_communes,
        ),
    ]
    if all_communes:  # name the list the caller sent, not the expansion
        errors = [
            FieldError("/communes", e.detail) if e.pointer.startswith("/communes/") else e
            for e in errors
        ][:20]
    raise_if_invalid(errors)
    now = clock.now()
    row = Convention(
        id=uuid.uuid4(),
        reference=body.reference,
        grantor_id=scope.organisation_id,
        grantee_id=body.grantee_id,
        competences=body.competences,
        communes=communes,
        all_communes=all_communes,
        data_categories=sorted({str(c) for c in body.data_categories}),
        valid_from=body.valid_from,
        valid_until=body.valid_until,
        status=ConventionStatus.PROPOSED,
        created_at=now,
        updated_at=now,
    )
    await ctx.store.add(row)
    await ctx.store.add_event(
        _event(
            scope,
            row,
            at=now,
            action=ConventionAction.PROPOSE,
            from_status=ConventionStatus.DRAFT,
            to_status=ConventionStatus.PROPOSED,
            reason=None,
        )
    )
    await ctx.changes.record(
        type="convention",
        resource_id=row.id,
        action="created",
        event="convention.status_changed",
        audience=[row.grantor_id, row.grantee_id],
        status=str(ConventionStatus.PROPOSED),
    )
    return (await _read(ctx, [row]))[0]


async def get(ctx: Conventions, convention_id: uuid.UUID) -> ConventionRead:
    row = await ctx.store.get(convention_id)
    if row is None:
        raise NotFound(detail="No such convention.")
    return (await _read(ctx, [row]))[0]


async def list_conventions(
    ctx: Conventions,
    *,
    side: str | None,
    status: str | None,
    cursor: str | None,
    limit: int,
) -> Page[ConventionRead]:
    after = decode_keyset(cursor, as_instant, uuid.UUID)
    rows = await ctx.store.page(
        side=side, status=status, after=(after[0], after[1]) if after else None, limit=limit
    )
    page = rows[:limit]
    next_cursor = (
        encode_cursor([page[-1].created_at.isoformat(), str(page[-1].id)])
        if len(rows) > limit
        else None
    )
    return Page[ConventionRead](items=await _read(ctx, page), next_cursor=next_cursor)


async def act(
    ctx: Conventions,
    convention_id: uuid.UUID,
    action: ConventionAction,
    reason: str | None,
) -> ConventionRead:
    scope, store = ctx.scope, ctx.store
    row = await store.get(convention_id, for_update=True)
    if row is None:
        raise NotFound(detail="No such convention.")
    scope.require(Action.MANAGE_CONVENTIONS)
    current = effective_status(
        ConventionStatus(row.status), row.valid_from, row.valid_until, clock.today()
    )
    target = apply_action(current, action, _side(scope, row))
    now = clock.now()
    updated = await store.set_status(row.id, target, now)
    await store.add_event(
        _event(
            scope, row, at=now, action=action, from_status=current, to_status=target, reason=reason
        )
    )
    await ctx.changes.record(
        type="convention",
        resource_id=row.id,
        action="status_changed",
        event="convention.status_changed",
        audience=[row.grantor_id, row.grantee_id],
        status=str(target),
    )
    return (await _read(ctx, [updated]))[0]
