"""The table of HTTP plumbing: the idempotency keys of creating requests (the protocol is
:mod:`api.http.idempotency`, the queries :mod:`api.http.idempotency_keys`)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import ClassVar

from sqlalchemy import Column, Index, LargeBinary
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field

from api.db.base import Table, instant_column
from api.db.scoping import OwnedByOrganisation, Scoping


class IdempotencyKey(Table, table=True):
    """A creating request's key and its first answer, per principal and organisation, kept
    24 hours. The stored body is sealed: it may hold personal data or a secret shown once."""

    __tablename__ = "idempotency_key"
    __scoping__: ClassVar[Scoping] = OwnedByOrganisation()
    __table_args__ = (Index("ix_idempotency_key_created_at", "created_at"),)

    principal_id: uuid.UUID = Field(primary_key=True)
    organisation_id: uuid.UUID = Field(primary_key=True)
    key: str = Field(primary_key=True, max_length=255)
    request_hash: str = Field(max_length=64)
    status_code: int | None = None
    headers: dict[str, str] | None = Field(default=None, sa_column=Column(JSONB, nullable=True))
    body_cipher: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    created_at: datetime = Field(sa_column=instant_column())
