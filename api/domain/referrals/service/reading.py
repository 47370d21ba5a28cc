"""Reading referrals: one referral with its events, chain and person, and the inbox and
outbox (a hot path: one statement, rows shaped as they come)."""

from __future__ import annotations

import uuid

from api.domain.catalogue import DataCategory
from api.domain.organisations.schemas import OrganisationRef
from api.domain.people import service as people
from api.domain.people.schemas import BeneficiaryRead
from api.domain.referrals.repository import PartiesOfReferral, Party, ReferralInBox
from api.domain.referrals.rules import ReferralSide, ReferralStatus, allowed_referral_actions
from api.domain.referrals.schemas import (
    ChainLink,
    InlineIdentity,
    Need,
    ReferralEventRead,
    ReferralRead,
    ReferralSummary,
)
from api.domain.referrals.service.context import (
    Referrals,
    etag,
    hidden_competences,
    require_referrals,
    shown,
    side_of,
    visible_referral,
)
from api.domain.referrals.tables import Referral
from api.http.schemas import PlainPage, as_instant, decode_keyset, encode_cursor
from api.problems import NotFound


def _inline_preview(referral: Referral, side: ReferralSide | None) -> InlineIdentity:
    """The inline person as the reader may see it: the sender wrote it all; the other
    parties see the contact fields only when the sender shared ``contact``."""
    identity = InlineIdentity.model_validate(referral.inline_identity)
    if side is ReferralSide.SENDER or DataCategory.CONTACT in set(referral.shared_categories):
        return identity
    return identity.model_copy(update={"phone": None, "email": None})


def _ref(party: Party) -> OrganisationRef:
    return OrganisationRef.model_validate(party, from_attributes=True)


def _summary(found: PartiesOfReferral) -> ReferralSummary:
    """A referral's summary, built without validation: every value comes typed from its
    column; the answer is still serialised through the response model."""
    r = found.referral
    return ReferralSummary.model_construct(
        id=r.id,
        status=r.status,
        competence=r.competence,
        sender=_ref(found.sender),
        recipient=_ref(found.recipient),
        beneficiary_id=r.beneficiary_id,
        need_code=r.need_code,
        urgency=r.urgency,
        response_due_on=r.response_due_on,
        created_at=r.created_at,
        updated_at=r.updated_at,
    )


async def _person(ctx: Referrals, referral: Referral, *, audit: bool) -> BeneficiaryRead | None:
    if referral.beneficiary_id is None:
        return None
    try:
        beneficiary, _ = await people.read(ctx.people, referral.beneficiary_id, audit=audit)
    except NotFound:
        return None  # the referral is closed for the caller, or never shared it
    return beneficiary


async def read(
    ctx: Referrals, referral_id: uuid.UUID, *, audit: bool = True
) -> tuple[ReferralRead, str]:
    found = await visible_referral(ctx, referral_id)
    r = found.referral
    beneficiary = await _person(ctx, r, audit=audit)
    if audit:
        await ctx.audit.record(
            "referral.read", "referral", str(r.id), beneficiary_id=r.beneficiary_id
        )
    events = [
        ReferralEventRead.model_validate(e, from_attributes=True)
        for e in await ctx.store.events(r.id)
    ]
    chain = [ChainLink.model_validate(c, from_attributes=True) for c in await ctx.store.chain(r.id)]
    return _composed(ctx, found, beneficiary, events, chain), etag(r.version)


async def read_sent(
    ctx: Referrals, found: PartiesOfReferral, beneficiary: BeneficiaryRead | None
) -> tuple[ReferralRead, str]:
    """The referral the caller has just sent, in the sending transaction, as :func:`read`
    shows it: the row and its parties as the insert returned them, the person as the sender
    read them before sending (what it may see of them does not change by sending), the
    ``sent`` event it wrote, and no chain yet (nothing could have redirected it)."""
    r = (await shown(ctx, found)).referral
    sent = ReferralEventRead(
        at=r.created_at,
        from_status=None,
        to_status=ReferralStatus.SENT,
        organisation=_ref(found.sender),
        actor_user_id=r.sender_user_id,
        actor_client_id=r.sender_client_id,
        acting_agent=r.acting_agent,
        reason_code=None,
        outcome_code=None,
        comment=None,
    )
    return _composed(ctx, found, beneficiary, [sent], []), etag(r.version)


def _composed(
    ctx: Referrals,
    found: PartiesOfReferral,
    beneficiary: BeneficiaryRead | None,
    events: list[ReferralEventRead],
    chain: list[ChainLink],
) -> ReferralRead:
    r = found.referral
    side = side_of(ctx.scope, r)
    return ReferralRead(
        **_summary(found).model_dump(),
        redirected_by=_ref(found.redirected_by) if found.redirected_by else None,
        need=Need(code=r.need_code, description=r.need_description),
        message=r.message,
        shared_categories=list(r.shared_categories),
        consent_id=r.consent_id,
        consent_override_reason=r.consent_override_reason,
        previous_referral_id=r.previous_referral_id,
        parent_referral_id=r.parent_referral_id,
        chain=chain,
        inline_identity=_inline_preview(r, side)
        if r.inline_identity and r.beneficiary_id is None
        else None,
        beneficiary=beneficiary,
        allowed_actions=allowed_referral_actions(ReferralStatus(r.status), side) if side else [],
        events=events,
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
) -> PlainPage[ReferralInBox]:
    """A page of the box's summaries, as plain values (``ReferralSummary``'s shape)."""
    require_referrals(ctx.scope)
    after = decode_keyset(cursor, as_instant, uuid.UUID)
    rows = await ctx.store.page(
        box=box,
        status=status,
        competence=competence,
        beneficiary_id=beneficiary_id,
        hidden=await hidden_competences(ctx),
        after=after,
        limit=limit,
    )
    items = rows[:limit]
    next_cursor = (
        encode_cursor([items[-1]["created_at"].isoformat(), items[-1]["id"]])
        if len(rows) > limit
        else None
    )
    return {"items": items, "next_cursor": next_cursor}
