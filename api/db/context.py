"""Per-transaction identity for row-level security.

The policies written in the migrations read ``guichet.organisation_id``,
``guichet.principal_id``, ``guichet.context``, ``guichet.clearance`` (the signed-in user's
sensitive clearance, which the access rule of migration 0016 honours) and
``guichet.statistics`` (the scope permits reading statistics: stat_fact's read policy,
migration 0023). They are set with
``set_config(…, true)``: local to the current transaction, so nothing leaks to the next user
of a pooled connection.
"""

from __future__ import annotations

import uuid
from enum import StrEnum

from sqlalchemy import String, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.db.base import core_table
from api.db.versioned import VERSION_KEY
from api.domain.territories.tables import AccessVersion

_access_version = core_table(AccessVersion).c.version

# built once: only the values change from one transaction to the next
_SETTINGS = (
    func.set_config("guichet.context", bindparam("context", type_=String), True),
    func.set_config("guichet.organisation_id", bindparam("organisation", type_=String), True),
    func.set_config("guichet.principal_id", bindparam("principal", type_=String), True),
    func.set_config("guichet.clearance", bindparam("clearance", type_=String), True),
    func.set_config("guichet.statistics", bindparam("statistics", type_=String), True),
)
_SET = select(*_SETTINGS)
_SET_AND_READ_VERSION = select(
    *_SETTINGS, select(_access_version).scalar_subquery().label("version")
)


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
    statistics_reader: bool = False,
    read_version: bool = False,
) -> None:
    """Set the transaction's identity; with ``read_version``, read the access version in the
    same round trip and leave it in ``session.info`` (api.db.versioned)."""
    values = {
        "context": str(context),
        "organisation": str(organisation_id or ""),
        "principal": str(principal_id or ""),
        "clearance": "sensitive" if sensitive_clearance else "",
        "statistics": "read" if statistics_reader else "",
    }
    if not read_version:
        await session.execute(_SET, values)
        return
    row = (await session.execute(_SET_AND_READ_VERSION, values)).one()
    session.info[VERSION_KEY] = int(row.version)
