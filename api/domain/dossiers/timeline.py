"""A person's legal-aid dossiers as a timeline source: their events, for the dossiers the
caller may see (the same rule as reading them), as ids and codes — never a comment."""

from __future__ import annotations

from api.domain.catalogue import DataCategory
from api.domain.dossiers.repository import DossierStore
from api.domain.dossiers.service.visibility import dossier_categories
from api.domain.people.rules import Event
from api.domain.people.timeline import TimelineQuery


def _type(action: str, from_status: str | None, to_status: str | None) -> str:
    if action == "create":
        return "dossier.created"
    if from_status != to_status and to_status is not None:
        return "dossier.status_changed"
    return "dossier.updated"


async def dossier_events(q: TimelineQuery) -> list[Event]:
    if DataCategory.DOSSIERS not in q.categories:
        return []
    rows = await DossierStore(q.session, q.scope).events_of_person(q.person_id)
    categories = await dossier_categories(
        q.session, q.scope, {r.event.dossier_id: (r.person_id, r.prestation) for r in rows}
    )
    return [
        Event(
            at=r.event.at,
            type=_type(r.event.action, r.event.from_status, r.event.to_status),
            id=r.event.dossier_id,
            organisation_id=r.event.organisation_id,
            competence=r.prestation,
            status=r.event.to_status,
            codes={"action": r.event.action, "channel": r.event.channel},
        )
        for r in rows
        if DataCategory.DOSSIERS in categories.get(r.event.dossier_id, frozenset())
    ]
