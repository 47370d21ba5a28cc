"""Sending a referral: to the partner named, or the directory's first one; resting on a
consent, an inline identity's declared consent, or an audited override."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from api.auth.permissions import Action
from api.auth.scope import Scope
from api.domain import clock
from api.domain.actors import event_actor
from api.domain.audit.repository import Access
from api.domain.catalogue import DataCategory
from api.domain.people import service as people
from api.domain.people.repository import PersonRecord
from api.domain.people.schemas import BeneficiaryRead
from api.domain.referrals.rules import (
    ReferralStatus,
    check_shared_categories,
    default_response_due_on,
)
from api.domain.referrals.schemas import ReferralCreate, ReferralRead
from api.domain.referrals.service.context import Referrals
from api.domain.referrals.service.counterparts import check_competence, resolve_counterpart
from api.domain.referrals.service.reading import read_sent
from api.problems import FieldError, ValidationFailed


async def send(ctx: Referrals, body: ReferralCreate) -> tuple[ReferralRead, str]:
    """Three round trips (and the consent's check when one is named): the person, their
    last contact touched (so that the answer shows it; a refusal rolls it back); once every
    check passed, the referral with its audit entries and its announcement, read back with
    its parties; then its event and the recipient's pending membership. The answer is
    composed from what was written, not read again."""
    ctx.scope.require(Action.SEND_REFERRALS)
    await check_competence(ctx.orgs, ctx.scope, body.competence)
    now = clock.now()
    commune, recipient, person = await _checked(ctx, body, now)
    referral_id = uuid.uuid4()
    found = await ctx.store.send(
        _sent_referral(ctx.scope, body, referral_id, recipient, commune, now),
        ctx.audit.entries(_accesses(body, referral_id)),
        ctx.changes.arguments(
            type="referral",
            resource_id=referral_id,
            action="created",
            event="referral.created",
            audience=[ctx.scope.organisation_id, recipient],
            status=ReferralStatus.SENT,
        ),
    )
    await ctx.store.open_sent(
        _sent_event(ctx.scope, referral_id, now),
        None
        if body.beneficiary_id is None
        else pending_membership(
            referral_id,
            body.beneficiary_id,
            recipient,
            body.competence,
            sorted({str(c) for c in body.shared_categories}),
        ),
    )
    return await read_sent(ctx, found, person)


def _sent_event(scope: Scope, referral_id: uuid.UUID, now: datetime) -> dict[str, Any]:
    return {"referral_id": referral_id, "at": now, "to_status": ReferralStatus.SENT} | event_actor(
        scope
    )


async def _checked(
    ctx: Referrals, body: ReferralCreate, now: datetime
) -> tuple[str, uuid.UUID, BeneficiaryRead | None]:
    """The person's commune, the recipient and the person as the sender may read them (none
    for an inline identity), once every field error is gathered."""
    commune, visible, person = await _commune_and_categories(ctx, body, now)
    errors = check_shared_categories(
        [str(c) for c in body.shared_categories],
        [str(c) for c in visible],
        inline=body.beneficiary is not None,
    )
    recipient = await resolve_counterpart(
        ctx.orgs,
        competence=body.competence,
        commune=commune,
        named=body.recipient_organisation_id,
        excluded={ctx.scope.organisation_id},
        pointer="/recipient_organisation_id",
    )
    errors += await _consent_errors(ctx, body, recipient)
    if body.response_due_on is not None and body.response_due_on <= clock.today():
        errors.append(FieldError("/response_due_on", "Must be after today."))
    if body.previous_referral_id and await ctx.store.get(body.previous_referral_id) is None:
        errors.append(FieldError("/previous_referral_id", "No such referral of yours."))
    if errors:
        raise ValidationFailed(detail=errors[0].detail, errors=errors)
    return commune, recipient, person


async def _commune_and_categories(
    ctx: Referrals, body: ReferralCreate, now: datetime
) -> tuple[str, frozenset[DataCategory], BeneficiaryRead | None]:
    """Where the person lives, what the sender sees of them (nothing of an inline one), and
    the person as it may read them: a partner refers someone it has just met, so their
    retention restarts (their last contact set to ``now``)."""
    if (body.beneficiary_id is None) == (body.beneficiary is None):
        raise ValidationFailed(
            detail="Name the person: beneficiary_id, or an inline beneficiary identity.",
            errors=[
                FieldError("/beneficiary_id", "Give exactly one of beneficiary_id, beneficiary.")
            ],
        )
    if body.beneficiary is not None:
        commune = body.beneficiary.commune
        if not await ctx.orgs.existing_communes([commune]):
            raise ValidationFailed(
                detail=f"Unknown commune {commune}.",
                errors=[FieldError("/beneficiary/commune", f"Unknown commune {commune}.")],
            )
        return commune, frozenset(), None
    assert body.beneficiary_id is not None
    person, visible = await people.touched_person(ctx.people, body.beneficiary_id, now)
    known = await _person_commune(ctx, person)
    if known is None:
        raise ValidationFailed(
            detail="This person has no commune: record one before referring them.",
            errors=[FieldError("/beneficiary_id", "The person has no commune.")],
        )
    return known, visible, people.shape(ctx.people, person, visible)


async def _person_commune(ctx: Referrals, person: PersonRecord) -> str | None:
    if person.commune_code:
        return str(person.commune_code)
    if person.domiciliation_organisation_id:
        domiciliation = await ctx.orgs.get(person.domiciliation_organisation_id)
        return domiciliation.commune_code if domiciliation else None
    return None


async def _consent_errors(
    ctx: Referrals, body: ReferralCreate, recipient: uuid.UUID
) -> list[FieldError]:
    """A referral rests on a consent or information record covering the recipient, on a
    consent the sender collected for an inline identity, or on an audited override."""
    if body.consent_override is not None:
        return []
    if body.beneficiary is not None:
        if body.consent_declared is None:
            return [
                FieldError(
                    "/consent_declared",
                    "Say how the person agreed (method, date), or give a consent_override.",
                )
            ]
        return []
    if body.consent_declared is not None:
        return [FieldError("/consent_declared", "Only for an inline identity: use consent_id.")]
    if body.consent_id is None:
        return [FieldError("/consent_id", "A consent record or a consent_override is required.")]
    assert body.beneficiary_id is not None
    if not await ctx.store.consent_covers(
        body.consent_id, body.beneficiary_id, recipient, body.competence
    ):
        return [
            FieldError(
                "/consent_id",
                "No valid consent or information record of this person covers the recipient.",
            )
        ]
    return []


def _sent_referral(
    scope: Scope,
    body: ReferralCreate,
    referral_id: uuid.UUID,
    recipient: uuid.UUID,
    commune: str,
    now: datetime,
) -> dict[str, Any]:
    """The referral row as sent: what the body says, who sent it, its deadline."""
    override = body.consent_override
    return {
        "id": referral_id,
        "sender_organisation_id": scope.organisation_id,
        "sender_user_id": scope.user_id,
        "sender_client_id": scope.client_id,
        "acting_agent": scope.acting_agent,
        "recipient_organisation_id": recipient,
        "beneficiary_id": body.beneficiary_id,
        "inline_identity": body.beneficiary.model_dump(mode="json") if body.beneficiary else None,
        "commune_code": commune,
        "competence": body.competence,
        "need_code": body.need.code,
        "need_description": body.need.description,
        "message": body.message,
        "shared_categories": sorted({str(c) for c in body.shared_categories}),
        "urgency": body.urgency,
        "response_due_on": _due_on(body, clock.today()),
        "consent_id": body.consent_id,
        "consent_override_reason": override.reason if override else None,
        "consent_override_justification": override.justification if override else None,
        "consent_declared": body.consent_declared.model_dump(mode="json")
        if body.consent_declared
        else None,
        "previous_referral_id": body.previous_referral_id,
        "status": ReferralStatus.SENT,
        "version": 1,
        "created_at": now,
        "updated_at": now,
    }


def _due_on(body: ReferralCreate, today: date) -> date:
    return body.response_due_on or default_response_due_on(body.competence, body.urgency, today)


def _accesses(body: ReferralCreate, referral_id: uuid.UUID) -> list[Access]:
    """The audit entries of a send (the override is one of its own)."""
    accesses = [Access("referral.send", "referral", str(referral_id), body.beneficiary_id)]
    if body.consent_override is not None:
        accesses.append(
            Access(
                "referral.consent_override",
                "referral",
                str(referral_id),
                body.beneficiary_id,
                purpose=f"{body.consent_override.reason}: {body.consent_override.justification}",
            )
        )
    return accesses


def pending_membership(
    referral_id: uuid.UUID,
    person_id: uuid.UUID,
    recipient: uuid.UUID,
    competence: str,
    shared: list[str],
) -> dict[str, Any]:
    """Until it answers, the recipient sees what the sender chose to share."""
    return {
        "id": uuid.uuid4(),
        "beneficiary_id": person_id,
        "organisation_id": recipient,
        "competence": competence,
        "team_role": "member",
        "source": "referral",
        "granted_categories": shared,
        "started_at": clock.now(),
        "origin_id": referral_id,
    }


async def open_pending(
    ctx: Referrals,
    referral_id: uuid.UUID,
    person_id: uuid.UUID,
    recipient: uuid.UUID,
    competence: str,
    shared: list[str],
) -> None:
    """Until it answers, the recipient sees what the sender chose to share."""
    await ctx.people.store.join(
        pending_membership(referral_id, person_id, recipient, competence, shared)
    )
