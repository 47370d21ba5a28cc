"""A person's legal-aid dossiers as a timeline source: their events, for the dossiers the
caller may see (the same rule as reading them), as ids and codes — never a comment."""

from __future__ import annotations

from types import SimpleNamespace

from api.domain.catalogue import DataCategory
from api.domain.dossiers.repository import DossierStore
from api.domain.dossiers.service import dossier_categories
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
    dossiers = {
        r.dossier_id: SimpleNamespace(
            id=r.dossier_id,
            beneficiary_id=r.person_id,
            prestation=r.prestation,
            commune_code=r.commune_code,
        )
        for r in rows
    }
    categories = await dossier_categories(q.session, q.scope, list(dossiers.values()))
    return [
        Event(
            at=r.at,
            type=_type(r.action, r.from_status, r.to_status),
            id=r.dossier_id,
            organisation_id=r.organisation_id,
            competence=r.prestation,
            status=r.to_status,
            codes={"action": r.action, "channel": r.channel},
        )
        for r in rows
        if DataCategory.DOSSIERS in categories.get(r.dossier_id, frozenset())
    ]
