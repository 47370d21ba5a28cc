"""The audit trail: an entry for every access to personal data, hash-chained per
organisation (domain.md §11), and where a chain starts once the retention purge deleted its
oldest entries."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import ClassVar

from sqlalchemy import BigInteger, CheckConstraint, Column, Identity, Index, text
from sqlmodel import Field

from api.db.base import Table, instant_column
from api.db.scoping import AttachedToPerson, Internal, Scoping


class AuditEntry(Table, table=True):
    """Append-only, hash-chained per organisation. No personal values: ids and actions.

    Requests insert entries unchained; the worker chains them after commit, in
    ``chain_position`` order (api.jobs.audit_chain)."""

    __tablename__ = "audit_entry"
    __scoping__: ClassVar[Scoping] = AttachedToPerson(column="beneficiary_id")
    __table_args__ = (
        Index("ix_audit_entry_beneficiary_id_at", "beneficiary_id", "at"),
        Index("ix_audit_entry_organisation_id_id", "organisation_id", "id"),
        Index(
            "ix_audit_entry_organisation_id_chain_position",
            "organisation_id",
            "chain_position",
            unique=True,
        ),
        Index(
            "ix_audit_entry_unchained",
            "organisation_id",
            "id",
            postgresql_where=text("chain_position IS NULL"),
        ),
        CheckConstraint(
            "(chain_position IS NULL) = (hash IS NULL) AND (hash IS NULL) = (prev_hash IS NULL)",
            name="chained_together",
        ),
    )

    id: int | None = Field(
        default=None, sa_column=Column(BigInteger, Identity(always=True), primary_key=True)
    )
    at: datetime = Field(sa_column=instant_column())
    organisation_id: uuid.UUID = Field(foreign_key="organisation.id")
    actor_user_id: uuid.UUID | None = None
    actor_client_id: uuid.UUID | None = None
    acting_agent: str | None = Field(default=None, max_length=200)
    action: str = Field(max_length=60)
    resource_type: str = Field(max_length=40)
    resource_id: str | None = Field(default=None, max_length=64)
    beneficiary_id: uuid.UUID | None = None
    purpose: str | None = None
    request_id: str | None = Field(default=None, max_length=128)
    #: NULL until the worker chains the entry (the three together)
    prev_hash: str | None = Field(default=None, max_length=64)
    hash: str | None = Field(default=None, max_length=64)
    chain_position: int | None = Field(default=None, sa_column=Column(BigInteger))


class AuditChainAnchor(Table, table=True):
    """Where an organisation's audit chain starts once its oldest entries were deleted by the
    retention purge: the hash of the last deleted entry, which the first kept entry chains to.
    Read by the owner and by ``audit_chain_head()`` only."""

    __tablename__ = "audit_chain_anchor"
    __scoping__: ClassVar[Scoping] = Internal()

    organisation_id: uuid.UUID = Field(foreign_key="organisation.id", primary_key=True)
    entry_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    hash: str = Field(max_length=64)
    pruned_at: datetime = Field(sa_column=instant_column())
