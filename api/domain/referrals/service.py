"""Referrals (adressages) between partners: sending, answering, redirecting, deadlines.

A party of an open referral is attached to its person through a care-team membership that
names the referral as its origin and grants the shared categories (domain.md §7); accepting
turns it into a full membership for the competence, and every way out of the loop (decline,
withdrawal, expiry, cancellation, redirection) ends it in the same transaction.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from api.auth.permissions import Action
from api.auth.scope import Scope
from api.domain import clock
from api.domain.actors import event_actor
from api.domain.audit.repository import Access, AuditLog
from api.domain.catalogue import DataCategory
from api.domain.changes.repository import ChangeLog
from api.domain.holdings import Holder, HoldingSource, order_holders
from api.domain.identity import name_match_keys
from api.domain.organisations.repository import OrganisationStore
from api.domain.organisations.schemas import OrganisationRef
from api.domain.people import service as people
from api.domain.people.schemas import BeneficiaryCreate, BeneficiaryRead
from api.domain.referrals.repository import ReferralStore, mark_expired, overdue_referrals
from api.domain.referrals.rules import (
    REFERRAL_TRANSITIONS,
    ReferralAction,
    ReferralSide,
    ReferralStatus,
    allowed_referral_actions,
    apply_referral_action,
    check_shared_categories,
    default_response_due_on,
    resumed_response_due_on,
)
from api.domain.referrals.schemas import (
    ChainLink,
    InlineIdentity,
    MessageCreate,
    MessageRead,
    Need,
    ReferralActionBody,
    ReferralCreate,
    ReferralEventRead,
    ReferralRead,
    ReferralSummary,
)
from api.http.schemas import Page, as_instant, decode_keyset, encode_cursor
from api.problems import (
    FieldError,
    Forbidden,
    NotFound,
    PreconditionFailed,
    ValidationFailed,
)

#: the reason code of a cancellation caused by a consent withdrawal
CONSENT_WITHDRAWN = "consentement_retire"


@dataclass(frozen=True)
class Referrals:
    """What the use cases need, built by the router for one request."""

    scope: Scope
    store: ReferralStore
    orgs: OrganisationStore
    people: people.People
    audit: AuditLog
    changes: ChangeLog


def etag(version: int) -> str:
    return f'"{version}"'


def org_ref(row: Any, prefix: str) -> OrganisationRef | None:
    if getattr(row, f"{prefix}_id") is None:
        return None
    return OrganisationRef(
        id=getattr(row, f"{prefix}_id"),
        name=getattr(row, f"{prefix}_name"),
        kind=getattr(row, f"{prefix}_kind"),
    )


async def holders(orgs: OrganisationStore, competence: str, commune: str) -> list[Holder]:
    """Who holds ``competence`` on ``commune`` today, delegates first (the directory)."""
    return order_holders(
        Holder(
            organisation_id=r.id,
            name=r.name,
            source=HoldingSource(r.source),
            convention_id=r.convention_id,
        )
        for r in await orgs.competent(competence, commune, clock.today())
    )


async def resolve_partner(
    orgs: OrganisationStore,
    *,
    competence: str,
    commune: str,
    named: uuid.UUID | None,
    excluded: set[uuid.UUID],
    pointer: str,
) -> uuid.UUID:
    """The partner named, if it holds the competence there, or the directory's first one."""
    competent = [h.organisation_id for h in await holders(orgs, competence, commune)]
    if named is not None:
        if named not in competent:
            raise ValidationFailed(
                detail=f"This partner does not hold {competence} on commune {commune}.",
                errors=[FieldError(pointer, f"Does not hold {competence} on {commune}.")],
            )
        if named in excluded:
            raise ValidationFailed(
                detail="Address another partner.",
                errors=[FieldError(pointer, "Not a partner you may address this to.")],
            )
        return named
    candidates = [h for h in competent if h not in excluded]
    if not candidates:
        raise ValidationFailed(
            detail=f"No other partner holds {competence} on commune {commune}.",
            errors=[FieldError("/competence", f"No competent partner on {commune}.")],
        )
    return candidates[0]


async def _person_commune(ctx: Referrals, row: Any) -> str | None:
    if row.commune_code:
        return str(row.commune_code)
    if row.domiciliation_organisation_id:
        domiciliation = await ctx.orgs.get(row.domiciliation_organisation_id)
        return domiciliation.commune_code if domiciliation else None
    return None


async def _check_competence(ctx: Referrals, competence: str) -> None:
    catalogue = {r.code: r for r in await ctx.orgs.competences()}
    known = catalogue.get(competence)
    if known is None:
        raise ValidationFailed(
            detail=f"Unknown competence {competence!r}.",
            errors=[FieldError("/competence", "Unknown competence.")],
        )
    if known.sensitive and not ctx.scope.has_sensitive_clearance:
        raise Forbidden(detail="This competence needs the sensitive clearance.")


# sending ----------------------------------------------------------------------------------


async def send(ctx: Referrals, body: ReferralCreate) -> tuple[ReferralRead, str]:
    scope = ctx.scope
    scope.require(Action.SEND_REFERRALS)
    await _check_competence(ctx, body.competence)
    if (body.beneficiary_id is None) == (body.beneficiary is None):
        raise ValidationFailed(
            detail="Name the person: beneficiary_id, or an inline beneficiary identity.",
            errors=[
                FieldError("/beneficiary_id", "Give exactly one of beneficiary_id, beneficiary.")
            ],
        )
    errors: list[FieldError] = []
    visible: frozenset[DataCategory] = frozenset()
    if body.beneficiary_id is not None:
        person, visible = await people.visible_person(ctx.people, body.beneficiary_id)
        commune = await _person_commune(ctx, person)
        if commune is None:
            raise ValidationFailed(
                detail="This person has no commune: record one before referring them.",
                errors=[FieldError("/beneficiary_id", "The person has no commune.")],
            )
    else:
        assert body.beneficiary is not None
        commune = body.beneficiary.commune
        if not await ctx.orgs.existing_communes([commune]):
            raise ValidationFailed(
                detail=f"Unknown commune {commune}.",
                errors=[FieldError("/beneficiary/commune", f"Unknown commune {commune}.")],
            )
    errors += check_shared_categories(
        [str(c) for c in body.shared_categories],
        [str(c) for c in visible],
        inline=body.beneficiary is not None,
    )
    recipient = await resolve_partner(
        ctx.orgs,
        competence=body.competence,
        commune=commune,
        named=body.recipient_organisation_id,
        excluded={scope.organisation_id},
        pointer="/recipient_organisation_id",
    )
    errors += await _consent_errors(ctx, body, recipient)
    today = clock.today()
    if body.response_due_on is not None and body.response_due_on <= today:
        errors.append(FieldError("/response_due_on", "Must be after today."))
    if body.previous_referral_id and await ctx.store.get(body.previous_referral_id) is None:
        errors.append(FieldError("/previous_referral_id", "No such referral of yours."))
    if errors:
        raise ValidationFailed(detail=errors[0].detail, errors=errors)

    now = clock.now()
    referral_id = uuid.uuid4()
    await ctx.store.insert(
        {
            "id": referral_id,
            "sender_organisation_id": scope.organisation_id,
            "sender_user_id": scope.user_id,
            "sender_client_id": scope.client_id,
            "acting_agent": scope.acting_agent,
            "recipient_organisation_id": recipient,
            "beneficiary_id": body.beneficiary_id,
            "inline_identity": body.beneficiary.model_dump(mode="json")
            if body.beneficiary
            else None,
            "commune_code": commune,
            "competence": body.competence,
            "need_code": body.need.code,
            "need_description": body.need.description,
            "message": body.message,
            "shared_categories": sorted({str(c) for c in body.shared_categories}),
            "urgency": body.urgency,
            "response_due_on": body.response_due_on
            or default_response_due_on(body.competence, body.urgency, today),
            "consent_id": body.consent_id,
            "consent_override_reason": body.consent_override.reason
            if body.consent_override
            else None,
            "consent_override_justification": body.consent_override.justification
            if body.consent_override
            else None,
            "consent_declared": body.consent_declared.model_dump(mode="json")
            if body.consent_declared
            else None,
            "previous_referral_id": body.previous_referral_id,
            "status": ReferralStatus.SENT,
            "created_at": now,
            "updated_at": now,
        }
    )
    await ctx.store.add_event(
        {
            "referral_id": referral_id,
            "at": now,
            "to_status": ReferralStatus.SENT,
            **event_actor(scope),
        }
    )
    if body.beneficiary_id is not None:
        await _open_pending(
            ctx,
            referral_id,
            body.beneficiary_id,
            recipient,
            body.competence,
            sorted({str(c) for c in body.shared_categories}),
        )
        # a partner refers someone it has just met: their retention restarts
        await ctx.people.store.touch_contact(body.beneficiary_id, now)
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
    await ctx.audit.record_many(accesses)
    await ctx.changes.record(
        type="referral",
        resource_id=referral_id,
        action="created",
        event="referral.created",
        audience=[scope.organisation_id, recipient],
        status=ReferralStatus.SENT,
    )
    return await read(ctx, referral_id, audit=False)


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


async def _open_pending(
    ctx: Referrals,
    referral_id: uuid.UUID,
    person_id: uuid.UUID,
    recipient: uuid.UUID,
    competence: str,
    shared: list[str],
) -> None:
    """Until it answers, the recipient sees what the sender chose to share."""
    await ctx.people.store.join(
        {
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
    )


# reading ----------------------------------------------------------------------------------


def _side(scope: Scope, row: Any) -> ReferralSide | None:
    if row.recipient_organisation_id == scope.organisation_id:
        return ReferralSide.RECIPIENT
    if row.sender_organisation_id == scope.organisation_id:
        return ReferralSide.SENDER
    return None  # the partner that redirected it: it follows the chain, it does not act


async def _get(ctx: Referrals, referral_id: uuid.UUID, *, for_update: bool = False) -> Any:
    """The referral if the caller's organisation is a party (404 otherwise), and the caller's
    role reads referrals (403 otherwise: an admin or a dpo of a party)."""
    row = await ctx.store.get(referral_id, for_update=for_update)
    if row is None or row.competence in await _hidden_competences(ctx):
        raise NotFound(detail="No such referral.")
    require_referrals(ctx.scope)
    return row


async def _hidden_competences(ctx: Referrals) -> frozenset[str]:
    """Sensitive competences (ase, violences) a caller without the clearance never sees a
    referral of, even as a party's member."""
    if ctx.scope.has_sensitive_clearance:
        return frozenset()
    return await ctx.orgs.sensitive_competences()


def require_referrals(scope: Scope) -> None:
    if DataCategory.REFERRALS not in scope.categories:
        raise Forbidden(detail="Your role does not cover referrals.")


def summary(row: Any) -> ReferralSummary:
    return ReferralSummary(
        id=row.id,
        status=row.status,
        competence=row.competence,
        sender=org_ref(row, "sender"),
        recipient=org_ref(row, "recipient"),
        beneficiary_id=row.beneficiary_id,
        need_code=row.need_code,
        urgency=row.urgency,
        response_due_on=row.response_due_on,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _inline_preview(row: Any, side: ReferralSide | None) -> InlineIdentity:
    """The inline person as the reader may see it: the sender wrote it all; the other
    parties see the contact fields only when the sender shared ``contact``."""
    identity = InlineIdentity.model_validate(row.inline_identity)
    if side is ReferralSide.SENDER or DataCategory.CONTACT in set(row.shared_categories):
        return identity
    return identity.model_copy(update={"phone": None, "email": None})


async def read(
    ctx: Referrals, referral_id: uuid.UUID, *, audit: bool = True
) -> tuple[ReferralRead, str]:
    row = await _get(ctx, referral_id)
    side = _side(ctx.scope, row)
    beneficiary: BeneficiaryRead | None = None
    if row.beneficiary_id is not None:
        try:
            beneficiary, _ = await people.read(ctx.people, row.beneficiary_id, audit=audit)
        except NotFound:
            beneficiary = None  # the referral is closed for the caller, or never shared it
    if audit:
        await ctx.audit.record(
            "referral.read", "referral", str(row.id), beneficiary_id=row.beneficiary_id
        )
    events = [
        ReferralEventRead(
            at=e.at,
            from_status=e.from_status,
            to_status=e.to_status,
            organisation=org_ref(e, "org"),
            actor_user_id=e.actor_user_id,
            actor_client_id=e.actor_client_id,
            acting_agent=e.acting_agent,
            reason_code=e.reason_code,
            outcome_code=e.outcome_code,
            comment=e.comment,
        )
        for e in await ctx.store.events(row.id)
    ]
    chain = [
        ChainLink(id=c.id, recipient=org_ref(c, "recipient"), status=c.status)
        for c in await ctx.store.chain(row.id)
    ]
    base = summary(row).model_dump()
    return (
        ReferralRead(
            **base,
            redirected_by=org_ref(row, "redirector"),
            need=Need(code=row.need_code, description=row.need_description),
            message=row.message,
            shared_categories=list(row.shared_categories),
            consent_id=row.consent_id,
            consent_override_reason=row.consent_override_reason,
            previous_referral_id=row.previous_referral_id,
            parent_referral_id=row.parent_referral_id,
            chain=chain,
            inline_identity=_inline_preview(row, side)
            if row.inline_identity and row.beneficiary_id is None
            else None,
            beneficiary=beneficiary,
            allowed_actions=allowed_referral_actions(ReferralStatus(row.status), side)
            if side
            else [],
            events=events,
        ),
        etag(row.version),
    )


async def page(
    ctx: Referrals,
    *,
    box: str,
    status: str | None,
    competence: str | None,
    beneficiary_id: uuid.UUID | None,
    cursor: str | None,
    limit: int,
) -> Page[ReferralSummary]:
    require_referrals(ctx.scope)
    after = decode_keyset(cursor, as_instant, uuid.UUID)
    rows = await ctx.store.page(
        box=box,
        status=status,
        competence=competence,
        beneficiary_id=beneficiary_id,
        hidden=await _hidden_competences(ctx),
        after=after,
        limit=limit,
    )
    items = rows[:limit]
    next_cursor = (
        encode_cursor([items[-1].created_at.isoformat(), str(items[-1].id)])
        if len(rows) > limit
        else None
    )
    return Page[ReferralSummary](items=[summary(r) for r in items], next_cursor=next_cursor)


# answering --------------------------------------------------------------------------------


async def act(
    ctx: Referrals,
    referral_id: uuid.UUID,
    action: str,
    body: ReferralActionBody,
    if_match: str | None,
) -> tuple[ReferralRead, str]:
    """One transition of domain.md §8, by the side it belongs to, re-checking the caller's
    current relationship; the event, audit entry and announcement go with it."""
    scope = ctx.scope
    row = await _get(ctx, referral_id, for_update=True)
    if if_match is not None and if_match != etag(row.version):
        raise PreconditionFailed(detail="The referral changed since you read it.")
    side = _side(scope, row)
    if side is None:
        raise Forbidden(detail="You redirected this referral: the new recipient answers it.")
    status = ReferralStatus(row.status)
    new_status = apply_referral_action(
        status, action, side, body.reason_code, body.outcome_code, body.comment
    )
    verb = ReferralAction(action)
    if side is ReferralSide.RECIPIENT:
        scope.require(Action.ANSWER_REFERRALS)
        if not scope.holds(row.competence, row.commune_code):
            raise Forbidden(
                detail=f"Your organisation no longer holds {row.competence} on this commune."
            )
    else:
        scope.require(Action.SEND_REFERRALS)

    now, today = clock.now(), clock.today()
    values: dict[str, Any] = {"status": new_status, "updated_at": now}
    audience = {row.sender_organisation_id, row.recipient_organisation_id}
    if row.redirected_by_organisation_id:
        audience.add(row.redirected_by_organisation_id)
    person_id = row.beneficiary_id

    if verb is ReferralAction.ACCEPT:
        person_id = await _accept(ctx, row, body)
        values["beneficiary_id"] = person_id
    elif verb is ReferralAction.REDIRECT:
        child = await _redirect(ctx, row, body)
        audience.add(child)
    elif verb is ReferralAction.HOLD:
        values["paused_on"] = today
    elif verb is ReferralAction.RESUME and row.paused_on is not None:
        values["paused_on"] = None
        values["response_due_on"] = resumed_response_due_on(
            row.response_due_on, row.paused_on, today
        )
    if new_status not in {s for t in REFERRAL_TRANSITIONS.values() for s in t.sources}:
        values["closed_at"] = now
        if verb is not ReferralAction.REDIRECT:
            await ctx.store.end_memberships(row.id, str(new_status), now)

    await ctx.store.update(row.id, values)
    await ctx.store.add_event(
        {
            "referral_id": row.id,
            "at": now,
            "from_status": status,
            "to_status": new_status,
            "reason_code": body.reason_code,
            "outcome_code": body.outcome_code,
            "comment": body.comment,
            **event_actor(scope),
        }
    )
    await ctx.audit.record(
        f"referral.{verb.value.replace('-', '_')}",
        "referral",
        str(row.id),
        beneficiary_id=person_id,
    )
    await ctx.changes.record(
        type="referral",
        resource_id=row.id,
        action="status_changed",
        event="referral.status_changed",
        audience=sorted(audience),
        status=new_status,
    )
    return await read(ctx, row.id, audit=False)


async def _accept(ctx: Referrals, row: Any, body: ReferralActionBody) -> uuid.UUID:
    """The recipient joins the care team for the competence; an inline identity is first
    matched against known people, or created."""
    scope = ctx.scope
    if row.beneficiary_id is None:
        person_id = await _link_inline(ctx, row, body)
    else:
        person_id = row.beneficiary_id
    await ctx.store.end_memberships(row.id, "accepted", clock.now())
    followed = {m.competence for m in await ctx.people.store.own_memberships([person_id])}
    if row.competence not in followed:
        await ctx.people.store.join(
            {
                "id": uuid.uuid4(),
                "beneficiary_id": person_id,
                "organisation_id": scope.organisation_id,
                "competence": row.competence,
                "team_role": "member",
                "source": "referral",
                "started_at": clock.now(),
                "origin_id": row.id,
            }
        )
    return person_id


async def _link_inline(ctx: Referrals, row: Any, body: ReferralActionBody) -> uuid.UUID:
    identity = InlineIdentity.model_validate(row.inline_identity)
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
            str(row.id),
            beneficiary_id=body.beneficiary_id,
        )
        return body.beneficiary_id
    created, _ = await people.create(
        ctx.people,
        BeneficiaryCreate(
            competence=row.competence,
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


async def _redirect(ctx: Referrals, row: Any, body: ReferralActionBody) -> uuid.UUID:
    """A child referral to a partner holding the competence, sent on the original sender's
    behalf: the sender sees the chain, the new recipient what was shared."""
    scope = ctx.scope
    recipient = await resolve_partner(
        ctx.orgs,
        competence=row.competence,
        commune=row.commune_code,
        named=body.recipient_organisation_id,
        excluded={scope.organisation_id, row.sender_organisation_id},
        pointer="/recipient_organisation_id",
    )
    if (
        row.consent_id is not None
        and row.beneficiary_id is not None
        and not await ctx.store.consent_covers(
            row.consent_id, row.beneficiary_id, recipient, row.competence
        )
    ):
        # the person agreed to a sharing with the first recipient, not with this one
        raise ValidationFailed(
            detail="The person's consent does not cover this partner: decline, and let the "
            "sender refer again with a consent that does.",
            errors=[FieldError("/recipient_organisation_id", "Not covered by the consent.")],
        )
    now = clock.now()
    child_id = uuid.uuid4()
    copied = {
        k: getattr(row, k)
        for k in (
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
    }
    await ctx.store.insert(
        {
            **copied,
            "id": child_id,
            "recipient_organisation_id": recipient,
            "redirected_by_organisation_id": scope.organisation_id,
            "parent_referral_id": row.id,
            "response_due_on": default_response_due_on(row.competence, row.urgency, clock.today()),
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
    await ctx.store.end_memberships(row.id, "redirected", now)
    if row.beneficiary_id is not None:
        await _open_pending(
            ctx,
            child_id,
            row.beneficiary_id,
            recipient,
            row.competence,
            list(row.shared_categories),
        )
    await ctx.changes.record(
        type="referral",
        resource_id=child_id,
        action="created",
        event="referral.created",
        audience=sorted({row.sender_organisation_id, recipient, scope.organisation_id}),
        status=ReferralStatus.SENT,
    )
    return recipient


# messages ---------------------------------------------------------------------------------


async def messages(ctx: Referrals, referral_id: uuid.UUID) -> list[MessageRead]:
    row = await _get(ctx, referral_id)
    await ctx.audit.record(
        "referral.messages_read", "referral", str(row.id), beneficiary_id=row.beneficiary_id
    )
    return [_message(m) for m in await ctx.store.messages(row.id)]


def _message(m: Any) -> MessageRead:
    return MessageRead(
        id=m.id,
        organisation=org_ref(m, "org"),
        author_user_id=m.author_user_id,
        author_client_id=m.author_client_id,
        acting_agent=m.acting_agent,
        body=m.body,
        created_at=m.created_at,
    )


async def add_message(ctx: Referrals, referral_id: uuid.UUID, body: MessageCreate) -> MessageRead:
    scope = ctx.scope
    row = await _get(ctx, referral_id)
    side = _side(scope, row)
    if side is None:
        raise Forbidden(detail="Only the sender and the recipient exchange messages.")
    scope.require(
        Action.ANSWER_REFERRALS if side is ReferralSide.RECIPIENT else Action.SEND_REFERRALS
    )
    message_id = uuid.uuid4()
    await ctx.store.add_message(
        {
            "id": message_id,
            "referral_id": row.id,
            "organisation_id": scope.organisation_id,
            "author_user_id": scope.user_id,
            "author_client_id": scope.client_id,
            "acting_agent": scope.acting_agent,
            "body": body.body,
            "created_at": clock.now(),
        }
    )
    await ctx.audit.record(
        "referral.message", "referral", str(row.id), beneficiary_id=row.beneficiary_id
    )
    await ctx.changes.record(
        type="referral",
        resource_id=row.id,
        action="updated",
        event="referral.message_added",
        audience=[row.sender_organisation_id, row.recipient_organisation_id],
    )
    return next(_message(m) for m in await ctx.store.messages(row.id) if m.id == message_id)


# the service's own transitions --------------------------------------------------------


async def cancel_for_withdrawn_consent(
    session: AsyncSession, scope: Scope, consent_id: uuid.UUID, reason: str
) -> list[uuid.UUID]:
    """Cancel the open referrals a withdrawn consent covered and end the access they gave
    (domain.md §6), whoever in the care team records the withdrawal. Returns their ids."""
    store = ReferralStore(session, scope)
    changes = ChangeLog(session)
    cancelled = []
    for r in await store.for_consent(consent_id):
        status = ReferralStatus(r.status)
        if status not in REFERRAL_TRANSITIONS[ReferralAction.CANCEL].sources:
            continue
        apply_referral_action(
            status, ReferralAction.CANCEL, ReferralSide.SYSTEM, CONSENT_WITHDRAWN, None, reason
        )
        if await store.system_transition(
            r.id,
            status,
            ReferralStatus.CANCELLED,
            reason_code=CONSENT_WITHDRAWN,
            comment=reason,
            at=clock.now(),
        ):
            cancelled.append(r.id)
            await changes.record(
                type="referral",
                resource_id=r.id,
                action="status_changed",
                event="referral.status_changed",
                audience=sorted({r.sender_organisation_id, r.recipient_organisation_id}),
                status=ReferralStatus.CANCELLED,
            )
    return cancelled


async def expire_overdue(session: AsyncSession, *, batch: int = 500) -> int:
    """Expire the unanswered referrals past their deadline (``guichet worker``). Runs on an
    owner session: rows locked with SKIP LOCKED, so several workers share the work."""
    expired = 0
    now = clock.now()
    for r in await overdue_referrals(session, clock.today(), batch):
        status = ReferralStatus(r.status)
        apply_referral_action(status, ReferralAction.EXPIRE, ReferralSide.SYSTEM)
        await mark_expired(session, r.id, status, now)
        await ChangeLog(session).record(
            type="referral",
            resource_id=r.id,
            action="status_changed",
            event="referral.status_changed",
            audience=sorted({r.sender_organisation_id, r.recipient_organisation_id}),
            status=ReferralStatus.EXPIRED,
        )
        expired += 1
    return expired
