"""The typed rows the referral and orientation repositories return: a table row with the
organisations it names, or the columns a list or a timeline shows, each named as the
response the service shapes from it (``model_validate(row, from_attributes=True)``)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypedDict

from sqlalchemy.orm import Bundle
from sqlmodel import col

from api.domain.organisations.tables import Organisation
from api.domain.referrals.tables import Referral


@dataclass(frozen=True, slots=True)
class Party:
    """An organisation a row names, as its reference shows it."""

    id: uuid.UUID
    name: str
    kind: str


#: how SQLAlchemy hands a bundle its columns, and takes its value back
RowProcessor = Callable[[Any], Any]


def _party(values: Sequence[Any]) -> Party | None:
    org_id, name, kind = values
    return None if org_id is None else Party(org_id, name, kind)


class PartyOf(Bundle[Party]):
    """The organisation of an inner join, as one :class:`Party` value of the row."""

    def __init__(self, name: str, org: type[Organisation]) -> None:
        super().__init__(name, col(org.id), col(org.name), col(org.kind))

    def create_row_processor(
        self, query: Any, procs: Sequence[RowProcessor], labels: Sequence[str]
    ) -> RowProcessor:
        return lambda row: _party([proc(row) for proc in procs])


class MaybePartyOf(Bundle[Party | None]):
    """The organisation of an outer join: None where the row names none."""

    def __init__(self, name: str, org: type[Organisation]) -> None:
        super().__init__(name, col(org.id), col(org.name), col(org.kind))

    def create_row_processor(
        self, query: Any, procs: Sequence[RowProcessor], labels: Sequence[str]
    ) -> RowProcessor:
        return lambda row: _party([proc(row) for proc in procs])


@dataclass(frozen=True, slots=True)
class PartiesOfReferral:
    """A referral and the organisations it names."""

    referral: Referral
    sender: Party
    recipient: Party
    redirected_by: Party | None


class PartyRef(TypedDict):
    """An organisation as a reference shows it: ``OrganisationRef``'s fields, in its order
    (the id as text)."""

    id: str
    name: str
    kind: str


class ReferralInBox(TypedDict):
    """A referral in a box, as its summary shows it: ``ReferralSummary``'s fields in its
    order, each value as it came typed from its column. A box is a hot path: its page is
    serialised from these as they are (``api.http.schemas.plain_json``), no model built;
    the ids come as text, as the answer shows them."""

    id: str
    status: str
    competence: str
    sender: PartyRef
    recipient: PartyRef
    beneficiary_id: str | None
    need_code: str
    urgency: str
    response_due_on: date
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class ReferralEventRow:
    at: datetime
    from_status: str | None
    to_status: str
    organisation: Party | None
    actor_user_id: uuid.UUID | None
    actor_client_id: uuid.UUID | None
    acting_agent: str | None
    reason_code: str | None
    outcome_code: str | None
    comment: str | None


@dataclass(frozen=True, slots=True)
class MessageRow:
    id: uuid.UUID
    organisation: Party
    author_user_id: uuid.UUID | None
    author_client_id: uuid.UUID | None
    acting_agent: str | None
    body: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ChainLinkRow:
    id: uuid.UUID
    recipient: Party
    status: str


@dataclass(frozen=True, slots=True)
class OpenReferral:
    """What closing a referral on the service's own behalf needs (expiry, withdrawn
    consent): its status and the parties its announcement goes to."""

    id: uuid.UUID
    status: str
    sender_organisation_id: uuid.UUID
    recipient_organisation_id: uuid.UUID
