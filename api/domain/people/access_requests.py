"""Access requests: an organisation that found a person by preview asks their care team for
access; a member approves (the requester joins the team with the categories asked, never the
NIR) or denies. Pending requests expire after 30 days."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from api.auth.permissions import Action
from api.db.tables import AccessRequest
from api.domain import clock
from api.domain.changes.repository import ChangeLog
from api.domain.people.repository import AccessRequestStore, locate_person
from api.domain.people.schemas import AccessRequestCreate, AccessRequestRead
from api.domain.people.service import People
from api.http.schemas import Page, decode_keyset, encode_cursor
from api.problems import FieldError, InvalidTransition, NotFound, ValidationFailed

EXPIRY = timedelta(days=30)


@dataclass(frozen=True)
class AccessRequests:
    """What the access-request use cases need, built for one request."""

    people: People
    requests: AccessRequestStore


def _read(row: AccessRequest) -> AccessRequestRead:
    read = AccessRequestRead.model_validate(row, from_attributes=True)
    if read.status == "pending" and read.expires_at <= clock.now():
        read.status = "expired"
    return read


async def ask(
    context: AccessRequests, person_id: uuid.UUID, body: AccessRequestCreate
) -> AccessRequestRead:
    ctx, requests = context.people, context.requests
    ctx.scope.require(Action.ANSWER_REFERRALS)
    # only about a person the caller may discover (person_locator answers nothing else):
    # anyone else is 404, whatever the competence asked
    exists, commune = await locate_person(ctx.store.session, person_id)
    if not exists:
        raise NotFound(detail="No such person.")
    if not commune or not ctx.scope.holds(body.competence, commune):
        raise ValidationFailed(
            detail="Your organisation does not hold this competence where the person lives.",
            errors=[FieldError("/competence", "Not held on the person's commune.")],
        )
    now = clock.now()
    request_id = uuid.uuid4()
    await requests.add(
        {
            "id": request_id,
            "beneficiary_id": person_id,
            "organisation_id": ctx.scope.organisation_id,
            "requested_by_user_id": ctx.scope.user_id,
            "competence": body.competence,
            "reason": body.reason,
            "categories": sorted(set(body.categories)),
            "status": "pending",
            "created_at": now,
            "expires_at": now + EXPIRY,
        }
    )
    await ctx.audit.record(
        "access_request.create",
        "access_request",
        str(request_id),
        beneficiary_id=person_id,
        purpose=body.reason,
    )
    changes = ChangeLog(ctx.store.session)
    await changes.record(
        type="access_request",
        resource_id=request_id,
        action="created",
        event="access_request.created",
        audience=[ctx.scope.organisation_id, *await changes.care_team(person_id)],
        status="pending",
    )
    row = await requests.get(request_id)
    assert row is not None
    return _read(row)


async def listing(
    context: AccessRequests, box: str, status: str | None, cursor: str | None, limit: int
) -> Page[AccessRequestRead]:
    position = decode_keyset(cursor, uuid.UUID)
    rows = await context.requests.box(box, status, position[0] if position else None, limit)
    page = rows[:limit]
    return Page[AccessRequestRead](
        items=[_read(r) for r in page],
        next_cursor=encode_cursor([str(page[-1].id)]) if len(rows) > limit else None,
    )


async def decide(
    context: AccessRequests, request_id: uuid.UUID, approve: bool, reason: str | None
) -> AccessRequestRead:
    ctx, requests = context.people, context.requests
    row = await requests.get(request_id, for_update=True)
    # only the person's care team decides; the requester sees its request but cannot decide it
    if row is None or row.organisation_id == ctx.scope.organisation_id:
        raise NotFound(detail="No such access request in your inbox.")
    ctx.scope.require(Action.ANSWER_REFERRALS)
    current = _read(row)
    if current.status != "pending":
        raise InvalidTransition(
            detail=f"This request is {current.status}.", extra={"allowed_actions": []}
        )
    now = clock.now()
    await requests.decide(
        request_id,
        {
            "status": "approved" if approve else "denied",
            "decided_at": now,
            "decided_by_organisation_id": ctx.scope.organisation_id,
            "decided_by_user_id": ctx.scope.user_id,
            "decision_reason": reason,
        },
    )
    if approve:
        await ctx.store.join(
            {
                "id": uuid.uuid4(),
                "beneficiary_id": row.beneficiary_id,
                "organisation_id": row.organisation_id,
                "competence": row.competence,
                "team_role": "member",
                "source": "access_request",
                "granted_categories": list(row.categories),
                "started_at": now,
            }
        )
    await ctx.audit.record(
        "access_request.approve" if approve else "access_request.deny",
        "access_request",
        str(request_id),
        beneficiary_id=row.beneficiary_id,
        purpose=reason,
    )
    changes = ChangeLog(ctx.store.session)
    await changes.record(
        type="access_request",
        resource_id=request_id,
        action="status_changed",
        event="access_request.decided",
        audience=[row.organisation_id, *await changes.care_team(row.beneficiary_id)],
        status="approved" if approve else "denied",
    )
    updated = await requests.get(request_id)
    assert updated is not None
    return _read(updated)
