"""Aid requests: created and submitted by the instructor (the grantor, or a delegate holding
the competence by convention on the person's commune), decided by the grantor. Every read
and write is audited, every change announced on the change feed, in the same transaction.
Decisions live in :mod:`api.domain.aids.decisions`; the assessment in
:mod:`api.domain.aids.assessment`."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from api.auth.permissions import Action
from api.auth.scope import Scope
from api.domain import clock
from api.domain.actors import event_actor
from api.domain.aids import access
from api.domain.aids.deps import Aids
from api.domain.aids.repository.requests import RequestRow
from api.domain.aids.rules.codes import AidCompetence, DecisionLevel
from api.domain.aids.rules.lifecycle import AidAction, AidStatus, allowed_actions, sides_of
from api.domain.aids.schemas import (
    AidEventRead,
    AidRequestCreate,
    AidRequestRead,
    AidRequestSummary,
    AidRequestUpdate,
    AssessmentRead,
    Payee,
    check_payee,
)
from api.domain.aids.tables import AidRequest, AidRequestEvent, AidType
from api.domain.catalogue import DataCategory
from api.http.schemas import Page, decode_keyset, encode_cursor
from api.problems import (
    Conflict,
    FieldError,
    Forbidden,
    NotFound,
    PreconditionFailed,
    ValidationFailed,
)

# which permission each lifecycle action takes (the level is checked by the decision)
ACTION_PERMISSION = {
    AidAction.SUBMIT: Action.INSTRUCT_AIDS,
    AidAction.SCHEDULE: Action.INSTRUCT_AIDS,
    AidAction.GRANT: Action.INSTRUCT_AIDS,
    AidAction.REFUSE: Action.INSTRUCT_AIDS,
    AidAction.ADJOURN: Action.INSTRUCT_AIDS,
    AidAction.CANCEL: Action.INSTRUCT_AIDS,
}


def etag(version: int) -> str:
    return f'"{version}"'


def caller_level(scope: Scope) -> DecisionLevel | None:
    """The highest tier the caller's roles may decide at, if any."""
    if scope.permits(Action.DECIDE):
        return DecisionLevel.DECIDEUR
    if scope.permits(Action.INSTRUCT_AIDS):
        return DecisionLevel.AGENT
    return None


def record_of(row: RequestRow) -> access.Record:
    return access.Record(
        id=row.id,
        beneficiary_id=row.beneficiary_id,
        prestation=row.competence,
    )


async def visible_ids(ctx: Aids, rows: Sequence[RequestRow]) -> set[uuid.UUID]:
    return await access.visible(ctx.scope, ctx.people, [record_of(r) for r in rows])


async def visible(ctx: Aids, request_id: uuid.UUID, *, for_update: bool = False) -> RequestRow:
    """The request, when the caller may see it; else 404, exactly like a missing one."""
    row = await ctx.requests.get(request_id, for_update=for_update)
    if row is None or row.id not in await visible_ids(ctx, [row]):
        raise NotFound(detail="No such aid request.")
    return row


def event(
    scope: Scope,
    request: AidRequest,
    action: str,
    *,
    from_status: str | None = None,
    to_status: str | None = None,
    reason_code: str | None = None,
    comment: str | None = None,
) -> AidRequestEvent:
    return AidRequestEvent(
        request_id=request.id,
        beneficiary_id=request.beneficiary_id,
        at=clock.now(),
        action=action,
        from_status=from_status,
        to_status=to_status,
        reason_code=reason_code,
        comment=comment,
        **event_actor(scope),
    )


def audience(request: AidRequest) -> list[uuid.UUID]:
    return sorted({request.instructing_organisation_id, request.grantor_organisation_id})


async def announce(ctx: Aids, request: AidRequest, action: str, status: str) -> None:
    event_name = "aid_request.created" if action == "created" else "aid_request.status_changed"
    await ctx.changes.record(
        type="aid_request",
        resource_id=request.id,
        action=action,
        event=event_name,
        audience=audience(request),
        status=status,
    )


def caller_actions(scope: Scope, request: AidRequest) -> list[str]:
    sides = sides_of(
        scope.organisation_id, request.instructing_organisation_id, request.grantor_organisation_id
    )
    return [
        str(a)
        for a in allowed_actions(AidStatus(request.status), sides)
        if scope.permits(ACTION_PERMISSION[a])
    ]


async def shape(ctx: Aids, row: RequestRow) -> AidRequestRead:
    request = row.request
    summary = AidRequestSummary.model_validate(request, from_attributes=True)
    return AidRequestRead(
        **summary.model_dump(),
        rules_id=request.rules_id,
        competence=request.competence,
        payee=Payee.model_validate(request.payee),
        reason=request.reason,
        commune_code=request.commune_code,
        required_level=request.required_level,
        decision_level=request.decision_level,
        assessment=AssessmentRead.model_validate(request.assessment)
        if request.assessment
        else None,
        refusal_reason=request.refusal_reason,
        derogation=request.derogation,
        derogation_justification=request.derogation_justification,
        emergency=request.emergency,
        commission_id=request.commission_id,
        submitted_on=request.submitted_on,
        decided_on=request.decided_on,
        created_at=request.created_at,
        allowed_actions=caller_actions(ctx.scope, request),
        events=[
            AidEventRead.model_validate(e, from_attributes=True)
            for e in await ctx.requests.events(request.id)
        ],
    )


async def read(
    ctx: Aids, request_id: uuid.UUID, *, audit: bool = True
) -> tuple[AidRequestRead, str]:
    row = await visible(ctx, request_id)
    if audit:
        await ctx.audit.record(
            "aid_request.read", "aid_request", str(row.id), beneficiary_id=row.beneficiary_id
        )
    return await shape(ctx, row), etag(row.request.version)


async def page(
    ctx: Aids,
    *,
    status: AidStatus | None,
    beneficiary_id: uuid.UUID | None,
    organisation_id: uuid.UUID | None,
    cursor: str | None,
    limit: int,
) -> Page[AidRequestSummary]:
    position = decode_keyset(cursor, uuid.UUID)
    rows = await ctx.requests.page(
        status=str(status) if status else None,
        beneficiary_id=beneficiary_id,
        organisation_id=organisation_id,
        after=position[0] if position else None,
        limit=limit,
    )
    shown = rows[:limit]
    seen = await visible_ids(ctx, shown)
    items = [
        AidRequestSummary.model_validate(r.request, from_attributes=True)
        for r in shown
        if r.id in seen
    ]
    if items:
        await ctx.audit.record("aid_request.list", "aid_request", None)
    next_cursor = encode_cursor([str(shown[-1].id)]) if len(rows) > limit else None
    return Page[AidRequestSummary](items=items, next_cursor=next_cursor)


# creation -----------------------------------------------------------------------------------


async def _aid_for(ctx: Aids, body: AidRequestCreate, commune: str) -> AidType:
    """The aid type ``aid_code`` of the grantor's règlement in force today covering the
    person's commune (the grantor named, or the only one granting it there)."""
    today = clock.today()
    found = await ctx.rules.grantors_of(body.aid_code, commune, today)
    if body.organisation_id is not None:
        found = [a for a in found if a.organisation_id == body.organisation_id]
    if not found:
        raise ValidationFailed(
            detail=f"No règlement in force grants {body.aid_code} to a person of {commune}.",
            errors=[FieldError("/aid_code", "Unknown here.")],
        )
    if len(found) > 1:
        raise ValidationFailed(
            detail=f"Several organisations grant {body.aid_code} there: name one.",
            errors=[FieldError("/organisation_id", "Required here.")],
        )
    return found[0]


async def _reads_aids_of(ctx: Aids, person_id: uuid.UUID) -> bool:
    """Whether the caller may read anything of the person for an aid competence: otherwise
    the person is answered as unknown, like everywhere else."""
    probes = [access.Record(uuid.uuid4(), person_id, str(c)) for c in AidCompetence]
    found = await access.categories(ctx.scope, ctx.people, probes)
    return any(found.values())


async def create(ctx: Aids, body: AidRequestCreate) -> tuple[AidRequestRead, str]:
    scope = ctx.scope
    person = await ctx.people.get(body.beneficiary_id)
    if person is None or not await _reads_aids_of(ctx, person.id):
        raise NotFound(detail="No such person.")
    scope.require(Action.INSTRUCT_AIDS)
    commune = person.commune_code
    if commune is None:
        raise ValidationFailed(
            detail="The person has no commune of residence.",
            errors=[FieldError("/beneficiary_id", "No commune.")],
        )
    check_payee(body.payee, "/payee")
    aid = await _aid_for(ctx, body, commune)
    if str(body.form) not in aid.forms:
        raise ValidationFailed(
            detail=f"{aid.code} is granted as {', '.join(aid.forms)}.",
            errors=[FieldError("/form", f"Not a form of {aid.code}.")],
        )
    if not scope.holds(aid.competence, commune):
        raise Forbidden(detail=f"Your organisation does not hold {aid.competence} there.")
    request_id = uuid.uuid4()
    probe = access.Record(request_id, person.id, aid.competence)
    if request_id not in await access.visible(scope, ctx.people, [probe]):
        raise Forbidden(
            detail=f"Your access to this person does not cover aids ({aid.competence})."
        )
    now = clock.now()
    request = AidRequest(
        id=request_id,
        beneficiary_id=person.id,
        grantor_organisation_id=aid.organisation_id,
        instructing_organisation_id=scope.organisation_id,
        rules_id=aid.rules_id,
        aid_type_id=aid.id,
        aid_code=aid.code,
        competence=aid.competence,
        category=aid.category,
        form=str(body.form),
        amount_asked=body.amount_asked,
        payee=body.payee.model_dump(exclude_none=True),
        reason=body.reason,
        commune_code=commune,
        status=AidStatus.DRAFT,
        status_changed_at=now,
        created_at=now,
        updated_at=now,
    )
    await ctx.requests.add(request)
    await ctx.requests.add_event(event(scope, request, "create", to_status=AidStatus.DRAFT))
    await ctx.audit.record(
        "aid_request.create", "aid_request", str(request.id), beneficiary_id=person.id
    )
    await announce(ctx, request, "created", AidStatus.DRAFT)
    return await read(ctx, request.id, audit=False)


async def update(
    ctx: Aids, request_id: uuid.UUID, body: AidRequestUpdate, if_match: str
) -> tuple[AidRequestRead, str]:
    """The instructor edits its draft (or an adjourned request) before (re)submitting."""
    row = await visible(ctx, request_id, for_update=True)
    request = row.request
    if ctx.scope.organisation_id != request.instructing_organisation_id:
        raise Forbidden(detail="Only the instructing organisation edits the request.")
    ctx.scope.require(Action.INSTRUCT_AIDS)
    if if_match != etag(request.version):
        raise PreconditionFailed(detail="The aid request changed since you read it.")
    if request.status not in (AidStatus.DRAFT, AidStatus.ADJOURNED):
        raise Conflict(
            detail=f"A {request.status} aid request no longer changes.",
            errors=[FieldError(f"/{n}", "Closed.") for n in body.model_fields_set],
        )
    changes: dict[str, Any] = {}
    if body.form is not None:
        aid = await ctx.rules.types_of([request.rules_id])
        forms = next((a.forms for a in aid if a.id == request.aid_type_id), [])
        if str(body.form) not in forms:
            raise ValidationFailed(
                detail=f"{request.aid_code} is granted as {', '.join(forms)}.",
                errors=[FieldError("/form", f"Not a form of {request.aid_code}.")],
            )
        changes["form"] = str(body.form)
    if body.amount_asked is not None:
        changes["amount_asked"] = body.amount_asked
    if body.payee is not None:
        check_payee(body.payee, "/payee")
        changes["payee"] = body.payee.model_dump(exclude_none=True)
    if body.reason is not None:
        changes["reason"] = body.reason
    if changes:
        changes["updated_at"] = clock.now()
        if not await ctx.requests.update(request.id, request.version, changes):
            raise PreconditionFailed(detail="The aid request changed since you read it.")
        await ctx.requests.add_event(event(ctx.scope, request, "update"))
        await ctx.audit.record(
            "aid_request.update",
            "aid_request",
            str(request.id),
            beneficiary_id=request.beneficiary_id,
        )
    return await read(ctx, request.id, audit=False)


def amount_or_zero(value: Decimal | None) -> Decimal:
    return value if value is not None else Decimal(0)


def needs_category(granted: frozenset[DataCategory], category: DataCategory) -> None:
    if category not in granted:
        raise Forbidden(detail=f"Your access to this person does not cover {category.value}.")
