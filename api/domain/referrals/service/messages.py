"""The messages the two sides of a referral exchange."""

from __future__ import annotations

import uuid

from api.auth.permissions import Action
from api.domain import clock
from api.domain.referrals.rules import ReferralSide
from api.domain.referrals.schemas import MessageCreate, MessageRead
from api.domain.referrals.service.context import Referrals, side_of, visible_referral
from api.problems import Forbidden


async def messages(ctx: Referrals, referral_id: uuid.UUID) -> list[MessageRead]:
    referral = (await visible_referral(ctx, referral_id)).referral
    await ctx.audit.record(
        "referral.messages_read",
        "referral",
        str(referral.id),
        beneficiary_id=referral.beneficiary_id,
    )
    return [
        MessageRead.model_validate(m, from_attributes=True)
        for m in await ctx.store.messages(referral.id)
    ]


async def add_message(ctx: Referrals, referral_id: uuid.UUID, body: MessageCreate) -> MessageRead:
    scope = ctx.scope
    referral = (await visible_referral(ctx, referral_id)).referral
    side = side_of(scope, referral)
    if side is None:
        raise Forbidden(detail="Only the sender and the recipient exchange messages.")
    scope.require(
        Action.ANSWER_REFERRALS if side is ReferralSide.RECIPIENT else Action.SEND_REFERRALS
    )
    message_id = uuid.uuid4()
    await ctx.store.add_message(
        {
            "id": message_id,
            "referral_id": referral.id,
            "organisation_id": scope.organisation_id,
            "author_user_id": scope.user_id,
            "author_client_id": scope.client_id,
            "acting_agent": scope.acting_agent,
            "body": body.body,
            "created_at": clock.now(),
        }
    )
    await ctx.audit.record(
        "referral.message", "referral", str(referral.id), beneficiary_id=referral.beneficiary_id
    )
    await ctx.changes.record(
        type="referral",
        resource_id=referral.id,
        action="updated",
        event="referral.message_added",
        audience=[referral.sender_organisation_id, referral.recipient_organisation_id],
    )
    added = next(m for m in await ctx.store.messages(referral.id) if m.id == message_id)
    return MessageRead.model_validate(added, from_attributes=True)
