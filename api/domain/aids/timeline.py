"""A person's aid requests as a timeline source: their events, for the requests the caller
may see (the same adapter as reading them), as ids and codes — never a reason or comment."""

from __future__ import annotations

from api.domain.aids import access
from api.domain.aids.repository.requests import RequestRepository
from api.domain.catalogue import DataCategory
from api.domain.people.repository import PeopleStore
from api.domain.people.rules import Event
from api.domain.people.timeline import TimelineQuery


def _type(action: str, from_status: str | None, to_status: str | None) -> str:
    if action == "create":
        return "aid_request.created"
    if action == "pay":
        return "aid_payment.created"
    if to_status is not None and from_status != to_status:
        return "aid_request.status_changed"
    return "aid_request.updated"


async def aid_events(q: TimelineQuery) -> list[Event]:
    if DataCategory.AIDS not in q.categories:
        return []
    rows = await RequestRepository(q.session, q.scope).events_of_person(q.person_id)
    records = {r.id: access.Record(r.id, r.beneficiary_id, r.competence) for _, r, _commune in rows}
    seen = await access.visible(
        q.scope,
        PeopleStore(q.session, q.scope),
        list(records.values()),
    )
    return [
        Event(
            at=e.at,
            type=_type(e.action, e.from_status, e.to_status),
            id=r.id,
            organisation_id=e.organisation_id,
            competence=r.competence,
            status=e.to_status,
            codes={k: v for k, v in {"action": e.action, "reason": e.reason_code}.items() if v},
        )
        for e, r, _ in rows
        if r.id in seen
    ]
