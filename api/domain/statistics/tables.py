"""The anonymous statistical rows the analyse des besoins sociaux counts.

One row per record counted (a person at first contact, a referral, an orientation, a legal-aid
dossier, an aid request), written by database triggers whenever the record changes (migration
0020), so that every write path — the API, dossier sync, imports — feeds it. A row holds
codes, a month and a commune, never a name: the retention purge clears ``source_id`` of the
people it anonymises and leaves the rest, so last year's figures survive it.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import ClassVar

from sqlalchemy import BigInteger, Column, DateTime, Identity, Index, Numeric, UniqueConstraint
from sqlmodel import Field

from api.db.base import Table
from api.db.scoping import Public, Scoping, Territorial


class StatFact(Table, table=True):
    __tablename__ = "stat_fact"
    __scoping__: ClassVar[Scoping] = Territorial(column="commune_code")
    __table_args__ = (
        UniqueConstraint("measure", "source_id"),
        Index("ix_stat_fact_measure_commune_code_month", "measure", "commune_code", "month"),
    )

    id: int | None = Field(
        default=None, sa_column=Column(BigInteger, Identity(always=True), primary_key=True)
    )
    measure: str = Field(max_length=20)
    # the record counted; None once the person it was about has been anonymised
    source_id: uuid.UUID | None = None
    # first day of the month of the event: first contact, sending, issue, creation
    month: date
    commune_code: str = Field(foreign_key="commune.code", max_length=5)
    age_band: str | None = Field(default=None, max_length=5)
    sex: str | None = Field(default=None, max_length=1)
    household_type: str | None = Field(default=None, max_length=20)
    competence: str | None = Field(default=None, max_length=40)
    status: str | None = Field(default=None, max_length=20)
    reason: str | None = Field(default=None, max_length=40)
    outcome: str | None = Field(default=None, max_length=40)
    prestation: str | None = Field(default=None, max_length=40)
    decision: str | None = Field(default=None, max_length=20)
    # aides facultatives
    category: str | None = Field(default=None, max_length=20)
    form: str | None = Field(default=None, max_length=30)
    amount: Decimal | None = Field(default=None, sa_column=Column(Numeric(12, 2), nullable=True))
    # working days from sending to the first acknowledgement, acceptance, completion
    acknowledged_days: int | None = None
    accepted_days: int | None = None
    completed_days: int | None = None
    refreshed_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class StatHoliday(Table, table=True):
    """French public holidays: working-day delays are computed in the database."""

    __tablename__ = "stat_holiday"
    __scoping__: ClassVar[Scoping] = Public()

    day: date = Field(primary_key=True)
