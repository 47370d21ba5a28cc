"""A pure test oracle of the access rule (domain.md §4 "Holding", §7 "Who sees what").

An independent table of expectations the tests compare the product's one source (the SQL
functions of migration 0016) against. Never imported by the product: a second copy of the
rule in the product is how the leaks of issue #10 happened.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from uuid import UUID

from api.domain.catalogue import LEGAL_AID_PRESTATIONS, CompetenceDef, DataCategory
from api.domain.conventions.rules import ConventionStatus, in_force
from api.domain.holdings import HoldingSource


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


ALL_BUT_NIR = frozenset(c for c in DataCategory if c is not DataCategory.NIR)
_KNOWN = {c.value for c in DataCategory}


@dataclass(frozen=True)
class Attachment:
    competence: str
    sensitive: bool
    #: "law", "convention" or None when the competence is no longer held there
    source: str | None
    convention_id: UUID | None = None
    #: what an approved access request or a referral named; never the NIR
    requested: frozenset[str] | None = None


def granted_categories(
    attachments: Iterable[Attachment],
    *,
    role_categories: frozenset[DataCategory],
    sensitive_clearance: bool,
    convention_categories: Mapping[UUID, Iterable[str]],
) -> frozenset[DataCategory]:
    """The categories the caller may read: its role's, intersected with what its attachments
    grant. A membership whose competence is no longer held grants nothing; a sensitive
    competence grants nothing without the clearance."""
    granted: set[DataCategory] = set()
    for a in attachments:
        if a.source is None or (a.sensitive and not sensitive_clearance):
            continue
        if a.requested is not None:
            granted |= {DataCategory(c) for c in a.requested if c in _KNOWN} - {DataCategory.NIR}
        elif a.source == "law":
            granted |= ALL_BUT_NIR
            if a.competence in LEGAL_AID_PRESTATIONS:
                granted.add(DataCategory.NIR)
        elif a.convention_id is not None:
            granted |= {
                DataCategory(c)
                for c in convention_categories.get(a.convention_id, ())
                if c in _KNOWN
            }
    return frozenset(granted) & role_categories
