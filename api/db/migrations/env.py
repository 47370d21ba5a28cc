"""Alembic environment: runs on the owner connection handed over by ``api.db.migrate``."""

from __future__ import annotations

from alembic import context

import api.db.tables  # noqa: F401 - registers every table on the metadata
from api.db.base import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    compare_type=True,
    transaction_per_migration=False,
)
with context.begin_transaction():
    context.run_migrations()
