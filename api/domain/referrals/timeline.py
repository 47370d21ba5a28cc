"""The referrals of a person, as a timeline source (codes, never free text): in the timeline
of the parties' members only (a referral is the parties')."""

from __future__ import annotations

from api.domain.catalogue import DataCategory
from api.domain.people.rules import Event
from api.domain.people.timeline import TimelineQuery
from api.domain.referrals.repository import ReferralStore


async def referral_events(q: TimelineQuery) -> list[Event]:
    if DataCategory.REFERRALS not in q.categories:
        return []
    return [
        Event(
            at=e.at,
            type="referral.status_changed" if e.from_status else "referral.created",
            id=e.referral_id,
            organisation_id=e.organisation_id,
            competence=competence,
            status=e.to_status,
            codes={
                k: str(v)
                for k, v in (("reason_code", e.reason_code), ("outcome_code", e.outcome_code))
                if v
            },
        )
        for e, competence in await ReferralStore(q.session, q.scope).events_of_person(q.person_id)
    ]
