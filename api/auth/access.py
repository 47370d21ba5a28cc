"""THE access rule, as the application sees it: who may see which categories of which person
now (domain.md §7).

The rule itself is written once, in SQL (migration 0016: ``guichet_access`` and the functions
around it), because row-level security must enforce it as a second wall: role categories ∩
what each care-team membership grants (law: every category but the NIR, the NIR too for the
law-held legal-aid competences; convention: its ``data_categories``; referral or access
request: what it named, never the NIR) ∩ competences held *now* on the person's commune;
sensitive competences only with the clearance; a break-glass membership opens the person's
household, resources, situation and NIR only while no sensitive competence follows them.
This module only asks and presents the answer; it never re-derives it.

Entry points:

* :func:`person_categories` — what the caller may read of each person (people, lists,
  timeline, household, budget…);
* :func:`record_categories` — what the caller may read of records "of competence C about
  person P": dossiers today, aid requests, notes. A new kind of record plugs in by calling it
  with ``(person, competence)`` pairs and requiring its own category (``dossiers``, ``aids``);
  its row-level policy calls ``guichet_may_see(person, competence, category, NULL)``, the
  same rule in SQL;
* :func:`role_categories` and :func:`categories_of_codes` — what a statement that asks the
  rule's SQL functions itself passes them and how their answer reads (the person read asks
  ``guichet_access`` in a lateral join of the statement that reads the record).

``purpose=Purpose.EXPORT`` (a DPO's right-of-access export) skips the role step: a DPO widens
the purpose of the reading, never the categories the organisation's attachment grants.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy.ext.asyncio import AsyncSession

from api.auth.access_queries import AccessStore
from api.auth.scope import Scope
from api.domain.catalogue import DataCategory

_KNOWN = {c.value for c in DataCategory}


class Purpose(StrEnum):
    READ = "read"
    EXPORT = "export"


@dataclass(frozen=True)
class Grant:
    """One active membership of the caller's organisation and what it grants now."""

    person_id: uuid.UUID
    competence: str
    membership_source: str
    #: "law", "convention", or None when the competence is no longer held there
    holding: str | None
    categories: frozenset[DataCategory]


def role_categories(scope: Scope, purpose: Purpose = Purpose.READ) -> list[str] | None:
    """What the access rule's ``p_role_categories`` is given: the caller's role categories,
    or ``None`` for an export (no role narrowing)."""
    return None if purpose is Purpose.EXPORT else sorted(c.value for c in scope.categories)


def categories_of_codes(codes: Iterable[str]) -> frozenset[DataCategory]:
    """The categories the access rule answered (one membership's, or several together: their
    union), as the application knows them."""
    return frozenset(DataCategory(c) for c in codes if c in _KNOWN)


async def grants(
    session: AsyncSession,
    scope: Scope,
    people: Iterable[uuid.UUID],
    *,
    purpose: Purpose = Purpose.READ,
) -> dict[uuid.UUID, list[Grant]]:
    """The caller's memberships on these people (an empty list: none), one query."""
    wanted = list(dict.fromkeys(people))
    found: dict[uuid.UUID, list[Grant]] = {p: [] for p in wanted}
    if not wanted:
        return found
    for r in await AccessStore(session).grants(wanted, role_categories(scope, purpose)):
        found[r.beneficiary_id].append(
            Grant(
                person_id=r.beneficiary_id,
                competence=r.competence,
                membership_source=r.membership_source,
                holding=r.holding,
                categories=categories_of_codes(r.categories),
            )
        )
    return found


async def person_categories(
    session: AsyncSession,
    scope: Scope,
    people: Iterable[uuid.UUID],
    *,
    purpose: Purpose = Purpose.READ,
) -> dict[uuid.UUID, frozenset[DataCategory]]:
    """What the caller may read of each person: the union over its memberships."""
    return {
        person: frozenset().union(*(g.categories for g in found))
        for person, found in (await grants(session, scope, people, purpose=purpose)).items()
    }


async def record_categories(
    session: AsyncSession,
    scope: Scope,
    records: Mapping[uuid.UUID, tuple[uuid.UUID, str]],
    *,
    purpose: Purpose = Purpose.READ,
) -> dict[uuid.UUID, frozenset[DataCategory]]:
    """What the caller may read of each record, given as ``{record id: (person id,
    competence)}``: the categories its membership for that competence grants."""
    found = await grants(session, scope, (p for p, _ in records.values()), purpose=purpose)
    return {
        record: frozenset().union(
            *(g.categories for g in found[person] if g.competence == competence)
        )
        for record, (person, competence) in records.items()
    }


def competences_granting(found: Iterable[Grant], category: DataCategory) -> list[str]:
    """The competences whose membership grants ``category`` (e.g. the notes one may read)."""
    return sorted({g.competence for g in found if category in g.categories})
