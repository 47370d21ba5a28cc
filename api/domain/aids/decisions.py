"""The lifecycle of an aid request (rules.py holds the table): submission with its assessment,
scheduling on a commission, and the grantor's decisions — checked for side (403), status
(409 ``invalid-transition``), level (403), ceilings and envelope (409 ``aid-rule-breach``
unless a decideur or the commission derogates, with a justification that is audited)."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from typing import Any

from api.domain import clock
from api.domain.aids import assessment as assessing
from api.domain.aids.deps import Aids
from api.domain.aids.problems import AidRuleBreach
from api.domain.aids.repository.requests import RequestRow
from api.domain.aids.requests import (
    ACTION_PERMISSION,
    announce,
    caller_level,
    etag,
    event,
    read,
    visible,
)

__all__ = ["Body", "act", "rule_for", "visible"]
from api.db.tables import CareTeamMembership
from api.domain.aids.reglements import rule_of
from api.domain.aids.rules.aid_types import AidTypeRule
from api.domain.aids.rules.codes import DecisionLevel
from api.domain.aids.rules.eligibility import check_grant, may_derogate
from api.domain.aids.rules.lifecycle import AidAction, AidStatus, apply_action, sides_of
from api.domain.aids.rules.money import EnvelopeKey, RequestMoney, envelope_figures, envelope_for
from api.domain.aids.schemas import (
    ActionBody,
    AdjournBody,
    AidRequestRead,
    GrantBody,
    RefuseBody,
    ScheduleBody,
)
from api.domain.aids.tables import AidRequest
from api.problems import (
    Conflict,
    FieldError,
    Forbidden,
    PreconditionFailed,
    ValidationFailed,
)

Body = ActionBody | ScheduleBody | GrantBody | RefuseBody | AdjournBody


async def act(
    ctx: Aids,
    request_id: uuid.UUID,
    action: AidAction,
    body: Body,
    if_match: str | None,
    *,
    commission_id: uuid.UUID | None = None,
) -> tuple[AidRequestRead, str]:
    """One transition of one request; ``commission_id`` when the commission decides it at
    its session."""
    row = await visible(ctx, request_id, for_update=True)
    request = row.request
    if if_match is not None and if_match != etag(request.version):
        raise PreconditionFailed(detail="The aid request changed since you read it.")
    sides = sides_of(
        ctx.scope.organisation_id,
        request.instructing_organisation_id,
        request.grantor_organisation_id,
    )
    status = AidStatus(request.status)
    target = apply_action(status, action, sides)
    ctx.scope.require(ACTION_PERMISSION[action])
    now = clock.now()
    values: dict[str, Any] = {"status": target, "status_changed_at": now, "updated_at": now}
    reason_code = None
    comment = getattr(body, "comment", None)
    if action is AidAction.SUBMIT:
        values |= await _submission(ctx, row)
    elif action is AidAction.SCHEDULE:
        assert isinstance(body, ScheduleBody)
        values["commission_id"] = await _open_session(ctx, body.session_id, "/session_id")
    elif action is AidAction.GRANT:
        assert isinstance(body, GrantBody)
        values |= await _grant(ctx, request, body, commission_id)
    elif action is AidAction.REFUSE:
        assert isinstance(body, RefuseBody)
        level = _decider_level(ctx, request, commission_id)
        reason_code = str(body.reason_code)
        values |= {
            "refusal_reason": reason_code,
            "decided_on": clock.today(),
            "decision_level": level.code,
        }
    if not await ctx.requests.update(request.id, request.version, values):
        raise PreconditionFailed(detail="The aid request changed since you read it.")
    if action is AidAction.SUBMIT:
        # after the update: the policy lets the instructor add the grantor once submitted
        await _grantor_joins(ctx, request)
    await ctx.requests.add_event(
        event(
            ctx.scope,
            request,
            str(action),
            from_status=status,
            to_status=target,
            reason_code=reason_code,
            comment=comment,
        )
    )
    await ctx.audit.record(
        f"aid_request.{action}",
        "aid_request",
        str(request.id),
        beneficiary_id=request.beneficiary_id,
    )
    await announce(ctx, request, "status_changed", target)
    return await read(ctx, request.id, audit=False)


async def rule_for(ctx: Aids, request: AidRequest) -> AidTypeRule:
    """The aid type as the request's règlement version states it."""
    rules = await ctx.rules.get(request.rules_id)
    aid = next(
        a for a in await ctx.rules.types_of([request.rules_id]) if a.id == request.aid_type_id
    )
    assert rules is not None
    return rule_of(aid, rules)


async def _submission(ctx: Aids, row: RequestRow) -> dict[str, Any]:
    """The version in force today for the grantor (the one the request is decided under,
    for ever), the budget snapshot and the assessment; the grantor joins the care team."""
    request = row.request
    today = clock.today()
    version = await ctx.rules.version_in_force(request.grantor_organisation_id, today)
    aid = None
    if version is not None:
        aid = next(
            (a for a in await ctx.rules.types_of([version.id]) if a.code == request.aid_code), None
        )
    if version is None or aid is None:
        raise Conflict(
            detail=f"The grantor's règlement in force no longer has {request.aid_code}.",
            errors=[FieldError("/aid_code", "No longer granted.")],
        )
    result, taken = await assessing.assess_request(
        ctx, request, rule_of(aid, version), row.person_commune
    )
    return {
        "rules_id": version.id,
        "aid_type_id": aid.id,
        "commune_code": row.person_commune or request.commune_code,
        "assessment": assessing.stored_assessment(result, taken),
        "budget_snapshot": taken.stored,
        "reste_a_vivre": result.reste_a_vivre,
        "consumption_units": result.uc,
        "household_size": len(taken.stored["household"]),
        "required_level": result.required_level.code,
        "submitted_on": today,
    }


async def _grantor_joins(ctx: Aids, request: AidRequest) -> None:
    """A submitted request brings its grantor into the person's care team for the aid's
    competence (row-level security lets the instructor write exactly that membership)."""
    grantor = request.grantor_organisation_id
    if grantor == ctx.scope.organisation_id:
        return
    if await ctx.requests.follows(request.beneficiary_id, grantor, request.competence):
        return
    await ctx.requests.join_team(
        CareTeamMembership(
            id=uuid.uuid4(),
            beneficiary_id=request.beneficiary_id,
            organisation_id=grantor,
            competence=request.competence,
            team_role="member",
            source="aid_request",
            started_at=clock.now(),
        )
    )


async def _open_session(ctx: Aids, session_id: uuid.UUID, pointer: str) -> uuid.UUID:
    session = await ctx.commissions.get(session_id)
    if session is None or session.status != "open":
        raise ValidationFailed(
            detail="No open commission session of your organisation with this id.",
            errors=[FieldError(pointer, "Unknown or closed.")],
        )
    return session.id


def _decider_level(
    ctx: Aids, request: AidRequest, commission_id: uuid.UUID | None
) -> DecisionLevel:
    """The level the decision is taken at; 403 when it is below what the request needs."""
    if commission_id is not None:
        return DecisionLevel.COMMISSION
    level = caller_level(ctx.scope)
    needed = DecisionLevel.of(request.required_level or "agent")
    if level is None or level < needed:
        raise Forbidden(detail=f"This request is decided at the {needed.code} level.")
    return level


async def _grant(
    ctx: Aids, request: AidRequest, body: GrantBody, commission_id: uuid.UUID | None
) -> dict[str, Any]:
    if body.amount > request.amount_asked:
        raise ValidationFailed(
            detail="A grant never exceeds the amount asked.",
            errors=[FieldError("/amount", f"At most {request.amount_asked}.")],
        )
    rule = await rule_for(ctx, request)
    form = str(body.form) if body.form is not None else request.form
    if form not in rule.forms:
        raise ValidationFailed(
            detail=f"{request.aid_code} is granted as {', '.join(sorted(rule.forms))}.",
            errors=[FieldError("/form", f"Not a form of {request.aid_code}.")],
        )
    level = caller_level(ctx.scope) or DecisionLevel.AGENT
    stored = request.assessment or {}
    failing = [c["rule"] for c in stored.get("checks", []) if c["result"] == "fail"]
    past = await assessing.history(ctx, request, clock.today())
    verdict = check_grant(
        rule,
        amount=body.amount,
        form=form,
        history=past,
        assessment_failures=failing,
        caller=level,
        at_commission=commission_id is not None,
    )
    if not verdict.level_ok:
        raise Forbidden(
            detail=f"This grant is decided at the {request.required_level or 'commission'} level."
        )
    breaches = list(verdict.breaches)
    decided_on = clock.today()
    if await _beyond_envelope(ctx, request, body.amount, decided_on):
        breaches.append("envelope")
    if breaches and body.derogation is None:
        raise AidRuleBreach(
            detail=f"The grant breaks {', '.join(breaches)}: only a derogation allows it.",
            errors=[FieldError("/amount", f"Breaks {rule_name}.") for rule_name in breaches],
            extra={"breaches": breaches},
        )
    if breaches and not may_derogate(level, commission_id is not None):
        raise Forbidden(detail="Only a decideur or the commission grants by derogation.")
    return {
        "amount_granted": body.amount,
        "form": form,
        "decided_on": decided_on,
        "decision_level": DecisionLevel.COMMISSION.code
        if commission_id is not None
        else level.code,
        "derogation": bool(breaches),
        "derogation_justification": body.derogation.justification
        if breaches and body.derogation
        else None,
        "emergency": verdict.emergency,
    }


async def _beyond_envelope(ctx: Aids, request: AidRequest, amount: Decimal, on: date) -> bool:
    """Whether ``amount`` goes beyond what remains of the envelope the request draws on. The
    year is locked so that two grants cannot both take the last euros."""
    await ctx.money.lock_year(on.year)
    envelopes = await ctx.money.envelopes(on.year)
    keys = {EnvelopeKey(e.category, e.aid_code): e.amount for e in envelopes}
    key = envelope_for(keys, request.aid_code, request.category)
    if key is None:
        return False
    lines = [
        RequestMoney(line.granted, line.paid, line.cancelled)
        for line in await ctx.money.money_of_year(on.year)
        if envelope_for(keys, line.aid_code, line.category) == key
    ]
    return envelope_figures(keys[key], lines).remaining < amount
