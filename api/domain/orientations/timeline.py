"""The orientations of a person, as a timeline source (codes, never free text): in the
timeline of whoever reads the person's orientations (their history is the care team's)."""

from __future__ import annotations

from api.domain.catalogue import DataCategory
from api.domain.orientations.repository import OrientationStore
from api.domain.people.rules import Event
from api.domain.people.timeline import TimelineQuery


async def orientation_events(q: TimelineQuery) -> list[Event]:
    if DataCategory.ORIENTATIONS not in q.categories:
        return []
    store = OrientationStore(q.session, q.scope)
    rows = await store.page(
        box=None, status=None, beneficiary_id=q.person_id, after=None, limit=500
    )
    competence = {r.orientation.id: r.orientation.competence for r in rows}
    return [
        Event(
            at=e.at,
            type="orientation.status_changed" if e.from_status else "orientation.created",
            id=orientation_id,
            organisation_id=e.organisation.id if e.organisation else None,
            competence=competence[orientation_id],
            status=e.to_status,
            codes={"reason_code": e.reason_code} if e.reason_code else None,
        )
        for orientation_id, events in (await store.events(list(competence))).items()
        for e in events
    ]
