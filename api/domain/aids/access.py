"""THE ADAPTER between aid requests and the access rule (domain.md §7): an aid request is a
record of its competence (``aide_facultative`` / ``aide_alimentaire``) about a person,
category ``aids``, exactly like a legal-aid dossier is a record of its prestation. This module
asks the entry point dossiers use (:func:`api.domain.dossiers.service.dossier_categories`)
and nothing else; the database repeats it through ``guichet_aids_can_see`` (migration 0019).
When the access rule gets its one home, repoint these two calls and nothing else changes."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from api.auth.scope import Scope
from api.domain.catalogue import DataCategory
from api.domain.dossiers.service import dossier_categories
from api.store.repositories.partners import OrganisationStore
from api.store.repositories.people import PeopleStore


@dataclass(frozen=True)
class Record:
    """What the rule asks of a record: its id, its person, its competence, and the person's
    commune now."""

    id: uuid.UUID
    beneficiary_id: uuid.UUID
    prestation: str
    commune_code: str | None


async def categories(
    scope: Scope, people: PeopleStore, orgs: OrganisationStore, records: Sequence[Record]
) -> dict[uuid.UUID, frozenset[DataCategory]]:
    """What the caller may read of each record's person for the record's competence."""
    return await dossier_categories(scope, people, orgs, records)


async def visible(
    scope: Scope, people: PeopleStore, orgs: OrganisationStore, records: Sequence[Record]
) -> set[uuid.UUID]:
    """The ids of the records the caller may see (category ``aids``)."""
    found = await categories(scope, people, orgs, records)
    return {record for record, granted in found.items() if DataCategory.AIDS in granted}
