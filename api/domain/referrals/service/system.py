"""What the service does to referrals on its own: cancel those a withdrawn consent covered,
expire those left unanswered past their deadline."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from api.auth.scope import Scope
from api.domain import clock
from api.domain.changes.repository import ChangeLog
from api.domain.referrals.repository import (
    OpenReferral,
    ReferralStore,
    mark_expired,
    overdue_referrals,
)
from api.domain.referrals.rules import (
    REFERRAL_TRANSITIONS,
    ReferralAction,
    ReferralSide,
    ReferralStatus,
    apply_referral_action,
)

#: the reason code of a cancellation caused by a consent withdrawal
CONSENT_WITHDRAWN = "consentement_retire"


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
            await _announce(changes, r, ReferralStatus.CANCELLED)
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
        await _announce(ChangeLog(session), r, ReferralStatus.EXPIRED)
        expired += 1
    return expired


async def _announce(changes: ChangeLog, referral: OpenReferral, status: ReferralStatus) -> None:
    await changes.record(
        type="referral",
        resource_id=referral.id,
        action="status_changed",
        event="referral.status_changed",
        audience=sorted({referral.sender_organisation_id, referral.recipient_organisation_id}),
        status=status,
    )
