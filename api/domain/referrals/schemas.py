"""Referrals: request and response shapes (api.md)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import EmailStr, Field, StringConstraints

from api.domain.catalogue import DataCategory
from api.domain.organisations.schemas import CommuneCode, OrganisationRef
from api.domain.people.schemas import BeneficiaryRead, Sex, Text
from api.http.schemas import Input, Output

LongText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=5000)]
Code = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60)]
Competence = Annotated[str, StringConstraints(max_length=40)]


class InlineIdentity(Input):
    """A person the sender has no record of; the recipient matches or creates them when it
    accepts."""

    birth_name: Text
    usage_name: Text | None = None
    first_names: Text
    birth_date: date
    sex: Sex
    commune: CommuneCode
    phone: Annotated[str, StringConstraints(max_length=30)] | None = None
    email: EmailStr | None = None


class Need(Input):
    code: Code
    description: LongText


class ConsentOverride(Input):
    reason: Literal["urgence", "obligation_legale"]
    justification: LongText


class ConsentDeclaration(Input):
    """For an inline identity: how the sender collected the person's agreement."""

    method: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=30)]
    given_on: date


class ReferralCreate(Input):
    beneficiary_id: uuid.UUID | None = None
    beneficiary: InlineIdentity | None = None
    competence: Competence
    recipient_organisation_id: uuid.UUID | None = Field(
        default=None, description="Resolved from the directory when absent (delegates first)."
    )
    need: Need
    message: LongText | None = None
    shared_categories: list[DataCategory] = Field(
        default=[DataCategory.IDENTITY],
        max_length=len(DataCategory),
        description="What the recipient may see before accepting; must include identity.",
    )
    urgency: Literal["normal", "high"] = "normal"
    response_due_on: date | None = Field(
        default=None, description="Default: per competence, in working days."
    )
    consent_id: uuid.UUID | None = None
    consent_override: ConsentOverride | None = None
    consent_declared: ConsentDeclaration | None = Field(
        default=None, description="Inline identity only: the consent the sender collected."
    )
    previous_referral_id: uuid.UUID | None = None


class ReferralActionBody(Input):
    reason_code: Code | None = None
    outcome_code: Code | None = None
    comment: LongText | None = None
    recipient_organisation_id: uuid.UUID | None = Field(
        default=None, description="redirect: the new recipient (resolved when absent)."
    )
    beneficiary_id: uuid.UUID | None = Field(
        default=None, description="accept of an inline referral: link this existing person."
    )
    force_create: bool = Field(
        default=False, description="accept of an inline referral: create despite a match."
    )
    justification: LongText | None = None


class ReferralEventRead(Output):
    at: datetime
    from_status: str | None
    to_status: str
    organisation: OrganisationRef | None
    actor_user_id: uuid.UUID | None
    actor_client_id: uuid.UUID | None
    acting_agent: str | None
    reason_code: str | None
    outcome_code: str | None
    comment: str | None


class ChainLink(Output):
    id: uuid.UUID
    recipient: OrganisationRef
    status: str


class ReferralSummary(Output):
    id: uuid.UUID
    status: str
    competence: str
    sender: OrganisationRef
    recipient: OrganisationRef
    beneficiary_id: uuid.UUID | None
    need_code: str
    urgency: str
    response_due_on: date
    created_at: datetime
    updated_at: datetime


class ReferralRead(ReferralSummary):
    redirected_by: OrganisationRef | None
    need: Need
    message: str | None
    shared_categories: list[str]
    consent_id: uuid.UUID | None
    consent_override_reason: str | None
    previous_referral_id: uuid.UUID | None
    parent_referral_id: uuid.UUID | None
    chain: list[ChainLink] = Field(
        description="The referrals this one was redirected to, in order (the sender sees them)."
    )
    inline_identity: InlineIdentity | None = Field(
        description="The identity the sender typed, until the recipient links a person."
    )
    beneficiary: BeneficiaryRead | None = Field(
        description="What the caller may see of the person now."
    )
    allowed_actions: list[str]
    events: list[ReferralEventRead]


class MessageCreate(Input):
    body: LongText


class MessageRead(Output):
    id: uuid.UUID
    organisation: OrganisationRef
    author_user_id: uuid.UUID | None
    author_client_id: uuid.UUID | None
    acting_agent: str | None
    body: str
    created_at: datetime
