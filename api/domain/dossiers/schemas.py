"""Legal-aid dossiers and their synchronisation with département information systems."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, Field, StringConstraints, field_validator

from api.domain.dossiers.rules import Decision, DossierStatus, SyncOutcome
from api.domain.organisations.schemas import CommuneCode, OrganisationRef
from api.http.schemas import Input, Output

Prestation = Annotated[str, StringConstraints(max_length=40)]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
LongText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]
Amount = Annotated[Decimal, Field(ge=0, le=10_000_000, max_digits=12, decimal_places=2)]

_CENT = Decimal("0.01")


class ExternalRef(Input):
    """A dossier's identifier in an information system (``system``: a name its organisation
    chooses, e.g. ``iodas-cd80``)."""

    system: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60)]
    id: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class ExternalRefRead(Output):
    system: str
    id: str
    organisation_id: uuid.UUID


class AttachmentMeta(Input):
    """A document received for the application: metadata only, never the file."""

    name: ShortText
    kind: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60)]
    received_on: date | None = None


class Instruction(Input):
    """The instruction fields, owned by the instructing organisation. Replaced as a whole."""

    household_size: Annotated[int, Field(ge=1, le=30)] | None = None
    monthly_resources: Amount | None = None
    housing: ShortText | None = None
    requested_on: date | None = None
    comments: LongText | None = None
    attachments: list[AttachmentMeta] | None = Field(default=None, max_length=50)

    @field_validator("monthly_resources")
    @classmethod
    def _cents(cls, value: Decimal | None) -> Decimal | None:
        # one spelling per amount, so that an unchanged value compares equal
        return value.quantize(_CENT) if value is not None else None

    def stored(self) -> dict[str, Any]:
        """The JSON form kept in the database and compared by the sync."""
        return self.model_dump(mode="json", exclude_none=True)


class DossierCreate(Input):
    beneficiary_id: uuid.UUID
    prestation: Prestation
    external_refs: list[ExternalRef] = Field(default_factory=list, max_length=20)
    instruction: Instruction | None = None


class DossierUpdate(Input):
    """Instruction fields (instructing side) or a correction of the decision while it is not
    notified (deciding side, ``decideur``); ``external_refs`` replaces the references your
    organisation recorded."""

    instruction: Instruction | None = None
    decision: Decision | None = None
    amount: Amount | None = None
    start_on: date | None = None
    end_on: date | None = None
    decision_reason: LongText | None = None
    external_refs: list[ExternalRef] | None = Field(default=None, max_length=20)


class DossierActionBody(Input):
    comment: LongText | None = None


class DecideBody(Input):
    decision: Decision
    amount: Amount | None = None
    start_on: date | None = None
    end_on: date | None = None
    reason: LongText | None = None


class DecisionRead(Output):
    decision: Decision
    amount: Decimal | None
    start_on: date | None
    end_on: date | None
    reason: str | None
    decided_on: date | None


class DossierEventRead(Output):
    at: datetime
    action: str
    from_status: DossierStatus | None
    to_status: DossierStatus | None
    organisation_id: uuid.UUID
    actor_user_id: uuid.UUID | None
    actor_client_id: uuid.UUID | None
    acting_agent: str | None
    channel: Literal["api", "sync"]
    comment: str | None


class DossierRead(Output):
    id: uuid.UUID
    beneficiary_id: uuid.UUID
    prestation: str
    status: DossierStatus
    instructing_organisation: OrganisationRef
    deciding_organisation: OrganisationRef
    external_refs: list[ExternalRefRead]
    instruction: Instruction
    decision: DecisionRead | None
    instruction_updated_at: datetime
    decision_updated_at: datetime | None
    status_changed_at: datetime
    created_at: datetime
    updated_at: datetime
    #: what the caller's organisation and role may do now
    allowed_actions: list[str]
    events: list[DossierEventRead]


class DossierSummary(Output):
    id: uuid.UUID
    beneficiary_id: uuid.UUID
    prestation: str
    status: DossierStatus
    instructing_organisation_id: uuid.UUID
    deciding_organisation_id: uuid.UUID
    decision: Decision | None
    updated_at: datetime


# synchronisation ----------------------------------------------------------------------------


class SyncBeneficiary(Input):
    """The person: a known ``id``, a ``nir``, or an identity (names, birth date, commune)
    matched like a creation (NIR, then same names and birth date) on the communes where the
    caller holds the prestation, and created when nobody matches."""

    id: uuid.UUID | None = None
    nir: Annotated[str, StringConstraints(max_length=21)] | None = None
    birth_name: ShortText | None = None
    usage_name: ShortText | None = None
    first_names: ShortText | None = None
    birth_date: date | None = None
    sex: Literal["F", "M", "X"] | None = None
    commune: CommuneCode | None = None


class SyncDecision(Input):
    decision: Decision
    amount: Amount | None = None
    start_on: date | None = None
    end_on: date | None = None
    reason: LongText | None = None
    #: default: the day already recorded, else the day of ``source_updated_at``
    decided_on: date | None = None


class SyncItem(Input):
    """One dossier as the caller's system knows it at ``source_updated_at``. ``dossier_id``
    links a dossier read from this service (e.g. instructed by a CCAS) to ``external_ref``
    the first time; afterwards the reference alone finds it."""

    external_ref: ExternalRef
    dossier_id: uuid.UUID | None = None
    beneficiary: SyncBeneficiary
    prestation: Prestation
    status: DossierStatus
    instruction: Instruction | None = None
    decision: SyncDecision | None = None
    source_updated_at: AwareDatetime


class SyncBatch(Input):
    # each item is a SyncItem parsed on its own: a NUL character in one is that item's error,
    # like any other defect of an item, and the batch is not walked twice
    nul_checked_per_element = frozenset({"items"})

    items: list[Any] = Field(
        min_length=1,
        max_length=1000,
        description="Up to 1,000 SyncItem objects (external_ref, dossier_id?, beneficiary, "
        "prestation, status, instruction?, decision?, source_updated_at). Each is checked on "
        "its own: a malformed item is reported as an error and never fails the others.",
    )


class SyncResult(Output):
    index: int
    external_ref: ExternalRef | None
    outcome: SyncOutcome
    dossier_id: uuid.UUID | None = None
    #: a problem document (RFC 9457) for ``conflict`` and ``error``
    problem: dict[str, Any] | None = None


class SyncReport(Output):
    results: list[SyncResult]
    counts: dict[str, int]
