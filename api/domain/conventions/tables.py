"""Conventions de délégation between two organisations, and their lifecycle events."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import ClassVar

from sqlmodel import Field

from api.db.base import Table, codes_column, instant_column
from api.db.scoping import Scoping, SharedBetweenOrganisations


class Convention(Table, table=True):
    """A convention de délégation. Readable by its two parties only; who holds what because
    of it is public through the ``convention_holdings`` database function."""

    __tablename__ = "convention"
    __scoping__: ClassVar[Scoping] = SharedBetweenOrganisations(
        columns=("grantor_id", "grantee_id")
    )

    id: uuid.UUID = Field(primary_key=True)
    reference: str = Field(max_length=100)
    grantor_id: uuid.UUID = Field(foreign_key="organisation.id", index=True)
    grantee_id: uuid.UUID = Field(foreign_key="organisation.id", index=True)
    competences: list[str] = Field(sa_column=codes_column(40))
    communes: list[str] = Field(sa_column=codes_column(5))
    all_communes: bool = False
    data_categories: list[str] = Field(sa_column=codes_column(20))
    valid_from: date
    valid_until: date | None = None
    status: str = Field(max_length=20)
    version: int = 1
    created_at: datetime = Field(sa_column=instant_column())
    updated_at: datetime = Field(sa_column=instant_column())


class ConventionEvent(Table, table=True):
    __tablename__ = "convention_event"
    __scoping__: ClassVar[Scoping] = SharedBetweenOrganisations(
        columns=("grantor_id", "grantee_id")
    )

    id: uuid.UUID = Field(primary_key=True)
    convention_id: uuid.UUID = Field(foreign_key="convention.id", index=True)
    # the parties, copied so the row-level policy needs no join
    grantor_id: uuid.UUID = Field(foreign_key="organisation.id")
    grantee_id: uuid.UUID = Field(foreign_key="organisation.id")
    at: datetime = Field(sa_column=instant_column())
    action: str = Field(max_length=20)
    from_status: str | None = Field(default=None, max_length=20)
    to_status: str = Field(max_length=20)
    actor_user_id: uuid.UUID | None = Field(default=None, foreign_key="app_user.id")
    actor_organisation_id: uuid.UUID = Field(foreign_key="organisation.id")
    actor_client_id: uuid.UUID | None = Field(default=None, foreign_key="api_client.id")
    # the agent an API client declared it acted for (X-Acting-Agent)
    acting_agent: str | None = Field(default=None, max_length=200)
    reason: str | None = None
