"""THE ADAPTER between aid requests and the access rule (domain.md §7): an aid request is a
record of its competence (``aide_facultative`` / ``aide_alimentaire``) about a person,
category ``aids``, exactly like a legal-aid dossier is a record of its prestation. This module
asks the access rule's one entry point for records (:func:`api.auth.access.record_categories`)
and nothing else; the database asks the same SQL home through ``guichet_aids_can_see``
(migration 0019)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from api.auth import access
from api.auth.scope import Scope
from api.domain.catalogue import DataCategory
from api.domain.people.repository import PeopleStore


@dataclass(frozen=True)
class Record:
    """What the rule asks of a record: its id, its person, its competence."""

    id: uuid.UUID
    beneficiary_id: uuid.UUID
    prestation: str


async def categories(
    scope: Scope, people: PeopleStore, records: Sequence[Record]
) -> dict[uuid.UUID, frozenset[DataCategory]]:
    """What the caller may read of each record's person for the record's competence."""
    return await access.record_categories(
        people.session, scope, {r.id: (r.beneficiary_id, r.prestation) for r in records}
    )


async def visible(scope: Scope, people: PeopleStore, records: Sequence[Record]) -> set[uuid.UUID]:
    """The ids of the records the caller may see (category ``aids``)."""
    found = await categories(scope, people, records)
    return {record for record, granted in found.items() if DataCategory.AIDS in granted}
