"""Problems proper to people records."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from api.problems import DomainError


@dataclass
class BeneficiaryMerged(DomainError):
    """The record was merged into another one the caller may read: ``merged_into`` names
    it, and ``Location`` the same resource under the surviving id."""

    duplicate_id: uuid.UUID | None = None
    survivor_id: uuid.UUID | None = None

    status = 301
    slug = "beneficiary-merged"
    title = "This person's record was merged into another one"


def merged(duplicate_id: uuid.UUID, survivor_id: uuid.UUID) -> BeneficiaryMerged:
    return BeneficiaryMerged(
        detail="This record was merged into another one: use the surviving record.",
        extra={"merged_into": str(survivor_id)},
        headers={"Location": f"/v1/beneficiaries/{survivor_id}"},
        duplicate_id=duplicate_id,
        survivor_id=survivor_id,
    )
