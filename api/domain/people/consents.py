"""Information notices and consents (domain.md §6): recorded by any desk of the care team
(the accueil informs people and collects their agreement before a referral), read by the
care team, withdrawn with a reason — which cancels the open referrals the consent covered,
in the same transaction."""

from __future__ import annotations

import uuid

from api.auth.permissions import Action
from api.db.tables import Consent
from api.domain import clock
from api.domain.people import rules
from api.domain.people.schemas import ConsentCreate, ConsentRead, ConsentWithdrawn
from api.domain.people.service import People, visible_person
from api.problems import FieldError, Forbidden, InvalidTransition, NotFound, ValidationFailed


def _read(row: Consent) -> ConsentRead:
    return ConsentRead.model_validate(
        {
            **row.model_dump(),
            "active": rules.consent_active(row.given_on, row.withdrawn_on, clock.today()),
        }
    )


async def _sensitive(ctx: People) -> frozenset[str]:
    return await ctx.orgs.sensitive_competences()


def _shown(ctx: People, row: Consent, sensitive: frozenset[str]) -> bool:
    return rules.sensitive_shown(
        competence=row.competence,
        organisation_id=row.recorded_by_organisation_id,
        sensitive=sensitive,
        clearance=ctx.scope.has_sensitive_clearance,
        own_organisation=ctx.scope.organisation_id,
    )


async def listing(ctx: People, person_id: uuid.UUID) -> list[ConsentRead]:
    await visible_person(ctx, person_id)
    sensitive = await _sensitive(ctx)
    rows = [r for r in await ctx.store.consents(person_id) if _shown(ctx, r, sensitive)]
    await ctx.audit.record("consents.read", "beneficiary", str(person_id), beneficiary_id=person_id)
    return [_read(r) for r in rows]


async def record(ctx: People, person_id: uuid.UUID, body: ConsentCreate) -> ConsentRead:
    await visible_person(ctx, person_id)
    scope = ctx.scope
    scope.require(Action.RECORD_CONSENTS)
    errors = rules.consent_errors(
        kind=body.kind,
        organisation_id=body.organisation_id,
        competence=body.competence,
        given_on=body.given_on,
        today=clock.today(),
    )
    if body.organisation_id and await ctx.orgs.get(body.organisation_id) is None:
        errors.append(FieldError("/organisation_id", "Unknown organisation."))
    sensitive = await _sensitive(ctx)
    if body.competence and body.competence not in {r.code for r in await ctx.orgs.competences()}:
        errors.append(FieldError("/competence", f"Unknown competence {body.competence!r}."))
    if errors:
        raise ValidationFailed(detail=errors[0].detail, errors=errors)
    if body.competence in sensitive and not scope.has_sensitive_clearance:
        raise Forbidden(detail="This competence needs the sensitive clearance.")
    now = clock.now()
    consent_id = uuid.uuid4()
    await ctx.store.add_consent(
        {
            "id": consent_id,
            "beneficiary_id": person_id,
            "kind": body.kind,
            "organisation_id": body.organisation_id,
            "competence": body.competence,
            "purpose": body.purpose,
            "method": body.method,
            "given_on": body.given_on,
            "recorded_by_organisation_id": scope.organisation_id,
            "recorded_by_user_id": scope.user_id,
            "created_at": now,
        }
    )
    await ctx.store.touch_contact(person_id, now)
    await ctx.audit.record("consent.create", "consent", str(consent_id), beneficiary_id=person_id)
    row = await ctx.store.consent(person_id, consent_id)
    assert row is not None
    return _read(row)


async def withdraw(
    ctx: People, person_id: uuid.UUID, consent_id: uuid.UUID, reason: str
) -> ConsentWithdrawn:
    # imported here: the referrals capability reads consents and may import this package
    from api.domain.referrals.service import cancel_for_withdrawn_consent

    await visible_person(ctx, person_id)
    row = await ctx.store.consent(person_id, consent_id, for_update=True)
    if row is None or not _shown(ctx, row, await _sensitive(ctx)):
        raise NotFound(detail="No such consent for this person.")
    ctx.scope.require(Action.RECORD_CONSENTS)
    if row.withdrawn_on is not None:
        raise InvalidTransition(
            detail="This consent was already withdrawn.", extra={"allowed_actions": []}
        )
    now = clock.now()
    await ctx.store.withdraw_consent(
        consent_id, {"withdrawn_on": max(clock.today(), row.given_on), "withdrawal_reason": reason}
    )
    cancelled = await cancel_for_withdrawn_consent(ctx.store.session, ctx.scope, consent_id, reason)
    await ctx.store.touch_contact(person_id, now)
    await ctx.audit.record(
        "consent.withdraw",
        "consent",
        str(consent_id),
        beneficiary_id=person_id,
        purpose=reason,
    )
    updated = await ctx.store.consent(person_id, consent_id)
    assert updated is not None
    return ConsentWithdrawn(**_read(updated).model_dump(), cancelled_referrals=cancelled)
