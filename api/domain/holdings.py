"""Who holds which competence where (domain.md §4 "Holding", "Who is competent").

An organisation holds competence C on commune X on a date either **by law** (its kind is a
legal holder of C and X is in its territory) or **by delegation** (a convention in force
grants C on X, C is delegable to the grantee's kind, and the grantor holds C on X by law —
a delegate cannot re-delegate, and the grantor losing its holding ends the delegate's).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from uuid import UUID

from api.domain.catalogue import CompetenceDef
from api.domain.conventions.rules import ConventionStatus, in_force


class HoldingSource(StrEnum):
    LAW = "law"
    CONVENTION = "convention"


@dataclass(frozen=True)
class Holding:
    competence: str
    commune: str
    source: HoldingSource
    convention_id: UUID | None = None


def law_holdings(
    kind: str, territory_communes: Iterable[str], catalogue: Mapping[str, CompetenceDef]
) -> set[Holding]:
    """Every (competence, commune) an organisation of ``kind`` holds by law on its territory."""
    communes = frozenset(territory_communes)
    return {
        Holding(code, commune, HoldingSource.LAW)
        for code, definition in catalogue.items()
        if kind in definition.legal_holder_kinds
        for commune in communes
    }


@dataclass(frozen=True)
class ConventionGrant:
    """What the holding rules need to know of one convention."""

    id: UUID
    grantor_id: UUID
    grantor_kind: str
    grantor_territory: frozenset[str]
    grantee_id: UUID
    grantee_kind: str
    competences: frozenset[str]
    communes: frozenset[str]
    status: ConventionStatus
    valid_from: date
    valid_until: date | None = None


def delegated_holdings(
    grants: Iterable[ConventionGrant], catalogue: Mapping[str, CompetenceDef], on: date
) -> set[Holding]:
    """Holdings the grants confer on their grantee on ``on`` (pass one grantee's grants).

    A grant item that fails a rule (unknown or non-delegable competence, grantee kind not
    allowed, grantor not a legal holder on that commune) is silently ignored: the catalogue or
    a territory may have changed since the convention was validated.
    """
    result: set[Holding] = set()
    for grant in grants:
        if not in_force(grant.status, grant.valid_from, grant.valid_until, on):
            continue
        for code in grant.competences:
            definition = catalogue.get(code)
            if (
                definition is None
                or grant.grantee_kind not in definition.delegable_to
                or grant.grantor_kind not in definition.legal_holder_kinds
            ):
                continue
            result.update(
                Holding(code, commune, HoldingSource.CONVENTION, grant.id)
                for commune in grant.communes & grant.grantor_territory
            )
    return result


@dataclass(frozen=True)
class Holder:
    """One line of the "who is competent" answer: an organisation and why it holds."""

    organisation_id: UUID
    name: str
    source: HoldingSource
    convention_id: UUID | None = None
    convention_reference: str | None = None


def _collation_key(name: str) -> str:
    decomposed = unicodedata.normalize("NFKD", name.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def order_holders(holders: Iterable[Holder]) -> list[Holder]:
    """Delegates (by convention) first, then legal holders; each group by name.

    Names compare without case or accents (``Écully`` sorts with ``E``); ties fall back to
    the exact name, the organisation id and the convention reference so the order is total.
    """
    return sorted(
        holders,
        key=lambda h: (
            h.source != HoldingSource.CONVENTION,
            _collation_key(h.name),
            h.name,
            str(h.organisation_id),
            h.convention_reference or "",
        ),
    )
