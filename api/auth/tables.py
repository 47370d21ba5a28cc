"""Login limits shared by every worker (migration 0018 holds the functions that use them)."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from sqlalchemy import BigInteger, Column, DateTime, Identity, Index, LargeBinary, String
from sqlmodel import Field

from api.db.base import Table
from api.db.scoping import Internal, Scoping


class LoginAttempt(Table, table=True):
    """One login attempt from an address, or one pending or failed attempt on an account.
    ``subject`` is a keyed hash of the account or address, never either in clear. Only the
    ``guichet_login_*`` functions touch it: the runtime role has no grant on the table."""

    __tablename__ = "login_attempt"
    __scoping__: ClassVar[Scoping] = Internal()
    __table_args__ = (
        Index("ix_login_attempt_subject_at", "subject", "at"),
        Index("ix_login_attempt_at", "at"),
    )

    id: int | None = Field(
        default=None, sa_column=Column(BigInteger, Identity(always=True), primary_key=True)
    )
    subject: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    kind: str = Field(sa_column=Column(String(10), nullable=False))
    at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
