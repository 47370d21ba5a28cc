"""The typed rows the dossier store reads."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from api.domain.dossiers.tables import DossierEvent


@dataclass(frozen=True, slots=True)
class StoredDossier:
    """A dossier as the store reads it, with its person's commune and the names of its two
    organisations."""

    id: uuid.UUID
    beneficiary_id: uuid.UUID
    prestation: str
    instructing_organisation_id: uuid.UUID
    deciding_organisation_id: uuid.UUID
    status: str
    instruction: dict[str, Any]
    instruction_updated_at: datetime
    decision: str | None
    amount: Decimal | None
    start_on: date | None
    end_on: date | None
    decision_reason: str | None
    decided_on: date | None
    decision_updated_at: datetime | None
    status_changed_at: datetime
    version: int
    created_at: datetime
    updated_at: datetime
    commune_code: str | None
    instructing_name: str
    instructing_kind: str
    deciding_name: str
    deciding_kind: str


@dataclass(frozen=True, slots=True)
class PersonMatch:
    """A known person who may be the person of a new dossier of sync item ``idx``."""

    idx: int
    id: uuid.UUID
    commune_code: str | None
    match_keys: list[str]
    folded_names: str
    #: the item named this person's id / carries this person's NIR
    by_id: bool
    nir_match: bool
    has_nir: bool


@dataclass(frozen=True, slots=True)
class PersonEvent:
    """An event of one of a person's dossiers, with the dossier's prestation and commune."""

    event: DossierEvent
    prestation: str
    person_id: uuid.UUID
    commune_code: str | None


@dataclass(frozen=True, slots=True)
class OwnRef:
    """One of the caller's own references: its dossier and person, and the digest of the sync
    item that last wrote the dossier through it, while nothing else wrote it since."""

    dossier_id: uuid.UUID
    beneficiary_id: uuid.UUID
    synced_digest: str | None
