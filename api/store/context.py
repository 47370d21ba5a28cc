"""Per-transaction identity for row-level security.

The policies written in the migrations read ``guichet.organisation_id``,
``guichet.principal_id``, ``guichet.context`` and ``guichet.clearance`` (the signed-in user's
sensitive clearance, which the access rule of migration 0016 honours). They are set with
``set_config(…, true)``: local to the current transaction, so nothing leaks to the next user
of a pooled connection.
"""

from __future__ import annotations

import uuid
from enum import StrEnum

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession


class DbContext(StrEnum):
    REQUEST = "request"  # an authenticated principal acting for one organisation
    AUTH = "auth"  # the token endpoint, before any organisation is known
    PLATFORM = "platform"  # a verified platform administrator
    ANONYMOUS = "anonymous"


async def set_db_context(
    session: AsyncSession,
    *,
    context: DbContext,
    organisation_id: uuid.UUID | None = None,
    principal_id: uuid.UUID | None = None,
    sensitive_clearance: bool = False,
) -> None:
    await session.execute(
        select(
            func.set_config("guichet.context", str(context), True),
            func.set_config("guichet.organisation_id", str(organisation_id or ""), True),
            func.set_config("guichet.principal_id", str(principal_id or ""), True),
            func.set_config("guichet.clearance", "sensitive" if sensitive_clearance else "", True),
        )
    )
