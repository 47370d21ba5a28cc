"""The referrals and orientations of a person, as timeline sources (codes, never free text).

A referral shows in the timeline of the parties' members only (it is the parties'); an
orientation in the timeline of whoever reads the person's orientations (its history is the
care team's)."""

from __future__ import annotations

from api.domain.catalogue import DataCategory
from api.domain.people.rules import Event
from api.domain.people.timeline import TimelineQuery
from api.domain.referrals.repository import OrientationStore, ReferralStore


async def referral_events(q: TimelineQuery) -> list[Event]:
    if DataCategory.REFERRALS not in q.categories:
        return []
    return [
        Event(
            at=e.at,
            type="referral.status_changed" if e.from_status else "referral.created",
            id=e.referral_id,
            organisation_id=e.organisation_id,
            competence=e.competence,
            status=e.to_status,
            codes={
                k: str(v)
                for k, v in (("reason_code", e.reason_code), ("outcome_code", e.outcome_code))
                if v
            },
        )
        for e in await ReferralStore(q.session, q.scope).events_of_person(q.person_id)
    ]


async def orientation_events(q: TimelineQuery) -> list[Event]:
    if DataCategory.ORIENTATIONS not in q.categories:
        return []
    store = OrientationStore(q.session, q.scope)
    rows = await store.page(
        box=None, status=None, beneficiary_id=q.person_id, after=None, limit=500
    )
    competence = {r.id: r.competence for r in rows}
    return [
        Event(
            at=e.at,
            type="orientation.status_changed" if e.from_status else "orientation.created",
            id=e.orientation_id,
            organisation_id=e.organisation_id,
            competence=competence[e.orientation_id],
            status=e.to_status,
            codes={"reason_code": e.reason_code} if e.reason_code else None,
        )
        for e in await store.events(list(competence))
    ]
