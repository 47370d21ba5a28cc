"""Answering a referral: one transition of domain.md §8 by the side it belongs to, with
what accepting (the recipient joins the care team, an inline person is linked or created)
and redirecting (a child referral to another competent partner) bring."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from api.auth.permissions import Action
from api.auth.scope import Scope
from api.domain import clock
from api.domain.actors import event_actor
from api.domain.identity import name_match_keys
from api.domain.people import service as people
from api.domain.people.schemas import BeneficiaryCreate
from api.domain.referrals.rules import (
    REFERRAL_OPEN,
    ReferralAction,
    ReferralSide,
    ReferralStatus,
    apply_referral_action,
    default_response_due_on,
    resumed_response_due_on,
)
from api.domain.referrals.schemas import InlineIdentity, ReferralActionBody, ReferralRead
from api.domain.referrals.service.context import Referrals, etag, side_of, visible_referral
from api.domain.referrals.service.counterparts import resolve_counterpart
from api.domain.referrals.service.reading import read
from api.domain.referrals.service.sending import open_pending
from api.domain.referrals.tables import Referral
from api.problems import FieldError, Forbidden, PreconditionFailed, ValidationFailed


async def act(
    ctx: Referrals,
    referral_id: uuid.UUID,
    action: str,
    body: ReferralActionBody,
    if_match: str | None,
) -> tuple[ReferralRead, str]:
    """One transition of domain.md §8, by the side it belongs to, re-checking the caller's
    current relationship; the event, audit entry and announcement go with it."""
    referral = (await visible_referral(ctx, referral_id, for_update=True)).referral
    if if_match is not None and if_match != etag(referral.version):
        raise PreconditionFailed(detail="The referral changed since you read it.")
    side = side_of(ctx.scope, referral)
    if side is None:
        raise Forbidden(detail="You redirected this referral: the new recipient answers it.")
    status = ReferralStatus(referral.status)
    new_status = apply_referral_action(
        status, action, side, body.reason_code, body.outcome_code, body.comment
    )
    verb = ReferralAction(action)
    _check_may_act(ctx.scope, side, referral)

    now = clock.now()
    values: dict[str, Any] = {"status": new_status, "updated_at": now}
    audience = {referral.sender_organisation_id, referral.recipient_organisation_id}
    if referral.redirected_by_organisation_id:
        audience.add(referral.redirected_by_organisation_id)
    person_id = referral.beneficiary_id

    if verb is ReferralAction.ACCEPT:
        person_id = await _accept(ctx, referral, body)
        values["beneficiary_id"] = person_id
    elif verb is ReferralAction.REDIRECT:
        audience.add(await _redirect(ctx, referral, body))
    values |= _deadline_change(verb, referral)
    if new_status not in REFERRAL_OPEN:
        values["closed_at"] = now
        if verb is not ReferralAction.REDIRECT:
            await ctx.store.end_memberships(referral.id, str(new_status), now)

    await ctx.store.update(referral.id, values)
    await _record_transition(ctx, referral.id, verb, status, new_status, body, now)
    await ctx.audit.record(
        f"referral.{verb.value.replace('-', '_')}",
        "referral",
        str(referral.id),
        beneficiary_id=person_id,
    )
    await ctx.changes.record(
        type="referral",
        resource_id=referral.id,
        action="status_changed",
        event="referral.status_changed",
        audience=sorted(audience),
        status=new_status,
    )
    return await read(ctx, referral.id, audit=False)


def _check_may_act(scope: Scope, side: ReferralSide, referral: Referral) -> None:
    """The recipient answers while it still holds the competence there; the sender sends."""
    if side is ReferralSide.RECIPIENT:
        scope.require(Action.ANSWER_REFERRALS)
        if not scope.holds(referral.competence, referral.commune_code):
            raise Forbidden(
                detail=f"Your organisation no longer holds {referral.competence} on this commune."
            )
    else:
        scope.require(Action.SEND_REFERRALS)


def _deadline_change(verb: ReferralAction, referral: Referral) -> dict[str, Any]:
    """On hold pauses the deadline; resuming pushes it by the working days on hold."""
    today = clock.today()
    if verb is ReferralAction.HOLD:
        return {"paused_on": today}
    if verb is ReferralAction.RESUME and referral.paused_on is not None:
        return {
            "paused_on": None,
            "response_due_on": resumed_response_due_on(
                referral.response_due_on, referral.paused_on, today
            ),
        }
    return {}


async def _record_transition(
    ctx: Referrals,
    referral_id: uuid.UUID,
    verb: ReferralAction,
    status: ReferralStatus,
    new_status: ReferralStatus,
    body: ReferralActionBody,
    now: datetime,
) -> None:
    await ctx.store.add_event(
        {
            "referral_id": referral_id,
            "at": now,
            "from_status": status,
            "to_status": new_status,
            "reason_code": body.reason_code,
            "outcome_code": body.outcome_code,
            "comment": body.comment,
            **event_actor(ctx.scope),
        }
    )


async def _accept(ctx: Referrals, referral: Referral, body: ReferralActionBody) -> uuid.UUID:
    """The recipient joins the care team for the competence; an inline identity is first
    matched against known people, or created."""
    if referral.beneficiary_id is None:
        person_id = await _link_inline(ctx, referral, body)
    else:
        person_id = referral.beneficiary_id
    await ctx.store.end_memberships(referral.id, "accepted", clock.now())
    followed = {m.competence for m in await ctx.people.store.own_memberships([person_id])}
    if referral.competence not in followed:
        await ctx.people.store.join(
            {
                "id": uuid.uuid4(),
                "beneficiary_id": person_id,
                "organisation_id": ctx.scope.organisation_id,
                "competence": referral.competence,
                "team_role": "member",
                "source": "referral",
                "started_at": clock.now(),
                "origin_id": referral.id,
            }
        )
    return person_id


async def _link_inline(ctx: Referrals, referral: Referral, body: ReferralActionBody) -> uuid.UUID:
    identity = InlineIdentity.model_validate(referral.inline_identity)
    keys = name_match_keys(identity.birth_name, identity.usage_name, identity.first_names)
    likely = await people.discoverable(ctx.people, None, identity.birth_date, keys)
    if body.beneficiary_id is not None:
        if body.beneficiary_id not in {r.id for r in likely}:
            raise ValidationFailed(
                detail="This person does not match the identity the sender gave.",
                errors=[FieldError("/beneficiary_id", "Not a match for this referral's person.")],
            )
        await ctx.audit.record(
            "referral.link_person",
            "referral",
            str(referral.id),
            beneficiary_id=body.beneficiary_id,
        )
        return body.beneficiary_id
    created, _ = await people.create(
        ctx.people,
        BeneficiaryCreate(
            competence=referral.competence,
            birth_name=identity.birth_name,
            usage_name=identity.usage_name,
            first_names=identity.first_names,
            birth_date=identity.birth_date,
            sex=identity.sex,
            commune=identity.commune,
            phone=identity.phone,
            email=identity.email,
            nir_missing_reason="adressage sans NIR",
            force_create=body.force_create,
            justification=body.justification,
        ),
    )
    return created.id


#: what a redirection copies from the referral it redirects
_COPIED_ON_REDIRECT = (
    "sender_organisation_id",
    "sender_user_id",
    "sender_client_id",
    "acting_agent",
    "beneficiary_id",
    "inline_identity",
    "commune_code",
    "competence",
    "need_code",
    "need_description",
    "message",
    "shared_categories",
    "urgency",
    "consent_id",
    "consent_override_reason",
    "consent_override_justification",
    "consent_declared",
    "previous_referral_id",
)


async def _redirect(ctx: Referrals, referral: Referral, body: ReferralActionBody) -> uuid.UUID:
    """A child referral to a partner holding the competence, sent on the original sender's
    behalf: the sender sees the chain, the new recipient what was shared. Returns the new
    recipient."""
    scope = ctx.scope
    recipient = await resolve_counterpart(
        ctx.orgs,
        competence=referral.competence,
        commune=referral.commune_code,
        named=body.recipient_organisation_id,
        excluded={scope.organisation_id, referral.sender_organisation_id},
        pointer="/recipient_organisation_id",
    )
    await _check_consent_covers(ctx, referral, recipient)
    now = clock.now()
    child_id = uuid.uuid4()
    await ctx.store.insert(
        {k: getattr(referral, k) for k in _COPIED_ON_REDIRECT}
        | {
            "id": child_id,
            "recipient_organisation_id": recipient,
            "redirected_by_organisation_id": scope.organisation_id,
            "parent_referral_id": referral.id,
            "response_due_on": default_response_due_on(
                referral.competence, referral.urgency, clock.today()
            ),
            "status": ReferralStatus.SENT,
            "created_at": now,
            "updated_at": now,
        }
    )
    await ctx.store.add_event(
        {
            "referral_id": child_id,
            "at": now,
            "to_status": ReferralStatus.SENT,
            "reason_code": body.reason_code,
            "comment": body.comment,
            **event_actor(scope),
        }
    )
    await ctx.store.end_memberships(referral.id, "redirected", now)
    if referral.beneficiary_id is not None:
        await open_pending(
            ctx,
            child_id,
            referral.beneficiary_id,
            recipient,
            referral.competence,
            list(referral.shared_categories),
        )
    await ctx.changes.record(
        type="referral",
        resource_id=child_id,
        action="created",
        event="referral.created",
        audience=sorted({referral.sender_organisation_id, recipient, scope.organisation_id}),
        status=ReferralStatus.SENT,
    )
    return recipient


async def _check_consent_covers(ctx: Referrals, referral: Referral, recipient: uuid.UUID) -> None:
    """The person agreed to a sharing with the first recipient, not necessarily with this
    one."""
    if (
        referral.consent_id is not None
        and referral.beneficiary_id is not None
        and not await ctx.store.consent_covers(
            referral.consent_id, referral.beneficiary_id, recipient, referral.competence
        )
    ):
        raise ValidationFailed(
            detail="The person's consent does not cover this partner: decline, and let the "
            "sender refer again with a consent that does.",
            errors=[FieldError("/recipient_organisation_id", "Not covered by the consent.")],
        )
