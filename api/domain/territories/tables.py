"""Official geography (COG) and the competence catalogue: public reference data."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from sqlalchemy import BigInteger, CheckConstraint, Column, DateTime, Index, SmallInteger, String
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import Field

from api.db.base import Table
from api.db.scoping import Internal, Public, Scoping


class Region(Table, table=True):
    __tablename__ = "region"
    __scoping__: ClassVar[Scoping] = Public()

    code: str = Field(primary_key=True, max_length=3)
    name: str


class Departement(Table, table=True):
    __tablename__ = "departement"
    __scoping__: ClassVar[Scoping] = Public()

    code: str = Field(primary_key=True, max_length=3)
    name: str
    region_code: str = Field(foreign_key="region.code", max_length=3)
    chef_lieu: str = Field(max_length=5)


class Epci(Table, table=True):
    __tablename__ = "epci"
    __scoping__: ClassVar[Scoping] = Public()

    siren: str = Field(primary_key=True, max_length=9)
    name: str
    type: str = Field(max_length=8)
    population: int


class Commune(Table, table=True):
    __tablename__ = "commune"
    __scoping__: ClassVar[Scoping] = Public()
    __table_args__ = (
        Index(
            "ix_commune_search_name",
            "search_name",
            postgresql_ops={"search_name": "text_pattern_ops"},
        ),
    )

    code: str = Field(primary_key=True, max_length=5)
    name: str
    siren: str | None = Field(default=None, max_length=9)
    # name folded for search (case, accents, punctuation): see api.domain.text.fold
    search_name: str
    departement_code: str = Field(foreign_key="departement.code", max_length=3, index=True)
    region_code: str = Field(foreign_key="region.code", max_length=3)
    epci_siren: str | None = Field(default=None, foreign_key="epci.siren", max_length=9, index=True)
    population: int
    postal_codes: list[str] = Field(sa_column=Column(ARRAY(String(5)), nullable=False))


class Competence(Table, table=True):
    """The catalogue: data, extendable by the platform operator, seeded from domain rules."""

    __tablename__ = "competence"
    __scoping__: ClassVar[Scoping] = Public()

    code: str = Field(primary_key=True, max_length=40)
    label: str
    legal_holder_kinds: list[str] = Field(sa_column=Column(ARRAY(String(20)), nullable=False))
    delegable_to: list[str] = Field(sa_column=Column(ARRAY(String(20)), nullable=False))
    sensitive: bool = False


class ReferenceLoad(Table, table=True):
    """Checksums of the reference files last loaded (set-up bookkeeping)."""

    __tablename__ = "reference_load"
    __scoping__: ClassVar[Scoping] = Internal()

    name: str = Field(primary_key=True)
    checksum: str = Field(max_length=64)
    loaded_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class AccessVersion(Table, table=True):
    """One row: a number that every committed change to what a request's scope or the
    competence catalogue is built from (memberships, users, API clients, organisations and
    their territories, conventions, competences) replaces, by triggers. Each request reads
    it with its transaction settings; scopes and catalogue cached by a process are reused
    only while it is unchanged (api.db.versioned)."""

    __tablename__ = "access_version"
    __scoping__: ClassVar[Scoping] = Public()
    __table_args__ = (CheckConstraint("id = 1", name="one_row"),)

    id: int = Field(sa_column=Column(SmallInteger, primary_key=True, autoincrement=False))
    version: int = Field(sa_column=Column(BigInteger, nullable=False))
