"""Referrals, read through the request's scope: a referral is the parties' (sender,
recipient, the partner that redirected it). Row-level security repeats the boundary.

:mod:`.store` holds the queries, :mod:`.rows` the typed rows they return.
"""

from api.domain.referrals.repository.rows import (
    ChainLinkRow,
    MaybePartyOf,
    MessageRow,
    OpenReferral,
    PartiesOfReferral,
    Party,
    PartyOf,
    ReferralEventRow,
    ReferralInBox,
)
from api.domain.referrals.repository.store import (
    ReferralStore,
    anonymise_referrals,
    end_origin_memberships,
    mark_expired,
    overdue_referrals,
)

__all__ = [
    "ChainLinkRow",
    "MaybePartyOf",
    "MessageRow",
    "OpenReferral",
    "PartiesOfReferral",
    "Party",
    "PartyOf",
    "ReferralEventRow",
    "ReferralInBox",
    "ReferralStore",
    "anonymise_referrals",
    "end_origin_memberships",
    "mark_expired",
    "overdue_referrals",
]
