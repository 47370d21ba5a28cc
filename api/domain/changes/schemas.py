"""The change feed: ids only."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import Field

from api.http.schemas import Output


class ChangeRead(Output):
    cursor: str = Field(description="Resume after this event: pass it as `after`.")
    type: str = Field(description="referral, orientation, dossier, beneficiary, convention…")
    id: uuid.UUID = Field(description="The record; read it with your own rights.")
    action: str = Field(description="created, status_changed, deleted (tombstone)…")
    at: datetime
    event: str = Field(description="The webhook event type, e.g. referral.status_changed.")
    status: str | None = Field(default=None, description="The record's new status, if any.")


class ChangePage(Output):
    items: list[ChangeRead]
    next_cursor: str | None = Field(
        description="Pass as `after` to continue; present even when caught up (then poll "
        "again later with it). A cursor belongs to its `types` filter."
    )
    has_more: bool = Field(description="More events are available right now.")
