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

from sqlalchemy.ext.asyncio import AsyncSession

from api.db.driver import driver_connection
from api.db.versioned import VERSION_KEY

# Run on the session's driver connection (api.db.driver): the one statement of every request.
_SET = """SELECT set_config('guichet.context', $1, true),
  set_config('guichet.organisation_id', $2, true), set_config('guichet.principal_id', $3, true),
  set_config('guichet.clearance', $4, true), set_config('guichet.statistics', $5, true)"""
_SET_AND_READ_VERSION = """SELECT set_config('guichet.context', $1, true),
  set_config('guichet.organisation_id', $2, true), set_config('guichet.principal_id', $3, true),
  set_config('guichet.clearance', $4, true), set_config('guichet.statistics', $5, true),
  (SELECT version FROM access_version) AS version"""


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
    values = (
        str(context),
        str(organisation_id or ""),
        str(principal_id or ""),
        "sensitive" if sensitive_clearance else "",
        "read" if statistics_reader else "",
    )
    driver = await driver_connection(session)
    if not read_version:
        await driver.execute(_SET, *values)
        return
    row = await driver.fetchrow(_SET_AND_READ_VERSION, *values)
    session.info[VERSION_KEY] = int(row["version"])
