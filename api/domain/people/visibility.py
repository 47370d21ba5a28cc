"""Who sees which categories of a person (domain.md §7): membership ∩ attachment ∩ competence.

Pure: the caller passes the organisation's active memberships for the person, how it holds
each competence today on the person's commune, and the categories of the conventions involved.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from uuid import UUID

from api.domain.catalogue import LEGAL_AID_PRESTATIONS, DataCategory

ALL_BUT_NIR = frozenset(c for c in DataCategory if c is not DataCategory.NIR)
_KNOWN = {c.value for c in DataCategory}


@dataclass(frozen=True)
class Attachment:
    competence: str
    sensitive: bool
    #: "law", "convention" or None when the competence is no longer held there
    source: str | None
    convention_id: UUID | None = None
    #: what an approved access request named; never the NIR
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


FIELD_CATEGORIES: Mapping[str, DataCategory] = {
    "birth_name": DataCategory.IDENTITY,
    "usage_name": DataCategory.IDENTITY,
    "first_names": DataCategory.IDENTITY,
    "birth_date": DataCategory.IDENTITY,
    "sex": DataCategory.IDENTITY,
    "birth_place": DataCategory.IDENTITY,
    "commune": DataCategory.CONTACT,
    "domiciliation_organisation_id": DataCategory.CONTACT,
    "address": DataCategory.CONTACT,
    "phone": DataCategory.CONTACT,
    "email": DataCategory.CONTACT,
    "nir": DataCategory.NIR,
    "nir_missing_reason": DataCategory.NIR,
    "situation": DataCategory.SITUATION,
    "last_contact_at": DataCategory.SITUATION,
}
