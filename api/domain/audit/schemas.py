"""The audit trail and a person's access log: ids, actions and purposes, no personal values."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import Field

from api.http.schemas import Output


class AuditActor(Output):
    kind: Literal["user", "client"]
    id: uuid.UUID


class AuditOrganisation(Output):
    id: uuid.UUID
    name: str


class AuditEntryRead(Output):
    """One entry of the caller organisation's own trail."""

    id: int
    at: datetime
    actor: AuditActor | None
    acting_agent: str | None
    action: str
    resource_type: str
    resource_id: str | None
    beneficiary_id: uuid.UUID | None
    purpose: str | None
    request_id: str | None
    #: null until the entry is chained, within seconds of its commit
    hash: str | None = Field(
        description="The entry's hash in its organisation's chain; null until it is chained, "
        "within seconds of the access it records."
    )


class AccessLogItem(Output):
    """Who accessed the person's data, for which organisation, when, what and why."""

    at: datetime
    organisation: AuditOrganisation
    actor: AuditActor | None
    action: str
    purpose: str | None
