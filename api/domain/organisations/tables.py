"""Organisations and their territory, people who work for them, machine clients."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import ClassVar

from sqlalchemy import Column, ForeignKey, Index, UniqueConstraint, text
from sqlmodel import Field

from api.db.base import Table, codes_column, instant_column
from api.db.scoping import (
    MemberOfOrganisation,
    OwnedByOrganisation,
    Public,
    Scoping,
)


class Organisation(Table, table=True):
    """A partner. Public: the partner directory holds no personal data."""

    __tablename__ = "organisation"
    __scoping__: ClassVar[Scoping] = Public()

    id: uuid.UUID = Field(primary_key=True)
    name: str
    # name folded for search (case, accents, punctuation): api.domain.text.fold
    search_name: str
    kind: str = Field(max_length=20, index=True)
    siret: str | None = Field(default=None, max_length=14)
    commune_code: str | None = Field(default=None, foreign_key="commune.code", max_length=5)
    epci_siren: str | None = Field(default=None, foreign_key="epci.siren", max_length=9)
    departement_code: str | None = Field(default=None, foreign_key="departement.code", max_length=3)
    service_area_communes: list[str] = Field(sa_column=codes_column(5))
    service_area_departements: list[str] = Field(sa_column=codes_column(3))
    email: str | None = None
    phone: str | None = None
    address: str | None = None
    retention_months: int = 24
    # months audit entries are kept (domain.md §11: 12 by default, 6 to 36)
    audit_retention_months: int = 12
    version: int = 1
    created_at: datetime = Field(sa_column=instant_column())
    updated_at: datetime = Field(sa_column=instant_column())


class OrganisationCommune(Table, table=True):
    """An organisation's territory, derived from its kind (commune, EPCI, département) or its
    declared service area; rewritten when the organisation changes."""

    __tablename__ = "organisation_commune"
    __scoping__: ClassVar[Scoping] = Public()
    __table_args__ = (Index("ix_organisation_commune_commune_code", "commune_code"),)

    organisation_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("organisation.id", ondelete="CASCADE"), primary_key=True)
    )
    commune_code: str = Field(foreign_key="commune.code", primary_key=True, max_length=5)


class AppUser(Table, table=True):
    """A person who signs in. Visible to the organisations they belong to."""

    __tablename__ = "app_user"
    __scoping__: ClassVar[Scoping] = MemberOfOrganisation()

    id: uuid.UUID = Field(primary_key=True)
    email: str = Field(unique=True, max_length=320)
    full_name: str
    password_hash: str | None = None
    disabled_at: datetime | None = Field(default=None, sa_column=instant_column(nullable=True))
    created_at: datetime = Field(sa_column=instant_column())


class Membership(Table, table=True):
    __tablename__ = "membership"
    __scoping__: ClassVar[Scoping] = OwnedByOrganisation()
    __table_args__ = (UniqueConstraint("user_id", "organisation_id"),)

    id: uuid.UUID = Field(primary_key=True)
    user_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("app_user.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    organisation_id: uuid.UUID = Field(
        sa_column=Column(
            ForeignKey("organisation.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    roles: list[str] = Field(sa_column=codes_column(20))
    created_at: datetime = Field(sa_column=instant_column())
    #: NULL while the membership is an invitation its user has not accepted (they work for
    #: another organisation): login, refresh and scope building ignore it until then
    accepted_at: datetime | None = Field(default=None, sa_column=instant_column(nullable=True))


class RoleGrant(Table, table=True):
    """A role (``sensitive``, ``dpo``) one admin asked for a member, applied when another
    admin approves it (migration 0017)."""

    __tablename__ = "role_grant"
    __scoping__: ClassVar[Scoping] = OwnedByOrganisation()
    __table_args__ = (
        Index("ix_role_grant_organisation_id_requested_at", "organisation_id", "requested_at"),
        Index(
            "uq_role_grant_pending",
            "organisation_id",
            "user_id",
            unique=True,
            postgresql_where=text("status = 'pending'"),
        ),
    )

    id: uuid.UUID = Field(primary_key=True)
    organisation_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("organisation.id", ondelete="CASCADE"), nullable=False)
    )
    user_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("app_user.id", ondelete="CASCADE"), nullable=False)
    )
    roles: list[str] = Field(sa_column=codes_column(20))
    status: str = Field(max_length=20)
    requested_by: uuid.UUID
    requested_at: datetime = Field(sa_column=instant_column())
    decided_by: uuid.UUID | None = None
    decided_at: datetime | None = Field(default=None, sa_column=instant_column(nullable=True))


class ApiClient(Table, table=True):
    """A partner's machine account: acts for one organisation within its scopes."""

    __tablename__ = "api_client"
    __scoping__: ClassVar[Scoping] = OwnedByOrganisation()

    id: uuid.UUID = Field(primary_key=True)
    organisation_id: uuid.UUID = Field(
        sa_column=Column(
            ForeignKey("organisation.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    client_id: str = Field(unique=True, max_length=64)
    name: str
    secret_hash: str
    scopes: list[str] = Field(sa_column=codes_column(40))
    created_at: datetime = Field(sa_column=instant_column())
    revoked_at: datetime | None = Field(default=None, sa_column=instant_column(nullable=True))


class RefreshToken(Table, table=True):
    """Rotating refresh tokens (stored hashed). A family is one sign-in: reusing a spent
    token revokes the whole family."""

    __tablename__ = "refresh_token"
    __scoping__: ClassVar[Scoping] = OwnedByOrganisation()

    id: uuid.UUID = Field(primary_key=True)
    family_id: uuid.UUID = Field(index=True)
    token_hash: str = Field(unique=True, max_length=64)
    user_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("app_user.id", ondelete="CASCADE"), nullable=False)
    )
    organisation_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("organisation.id", ondelete="CASCADE"), nullable=False)
    )
    expires_at: datetime = Field(sa_column=instant_column())
    used_at: datetime | None = Field(default=None, sa_column=instant_column(nullable=True))
    revoked_at: datetime | None = Field(default=None, sa_column=instant_column(nullable=True))
    created_at: datetime = Field(sa_column=instant_column())
