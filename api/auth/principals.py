"""Reads and writes of the token endpoint and of scope building.

These run before any scope exists: the caller sets the ``auth`` database context (token
endpoint) or the claimed organisation and principal (scope building) first, so row-level
security still applies.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import NamedTuple

from sqlalchemy import func, literal, literal_column, select, update
from sqlalchemy.dialects.postgresql import aggregate_order_by, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from api.db.tables import (
    ApiClient,
    AppUser,
    Competence,
    Membership,
    Organisation,
    OrganisationCommune,
    RefreshToken,
)


class MembershipChoice(NamedTuple):
    """An organisation the user may sign in for, and their roles there."""

    organisation_id: uuid.UUID
    roles: list[str]
    kind: str
    name: str


class ActiveMembership(NamedTuple):
    """Roles, organisation kind and e-mail of an enabled user's accepted membership."""

    roles: list[str]
    kind: str
    email: str


class ActiveClient(NamedTuple):
    """Scopes and organisation kind of an API client not revoked."""

    scopes: list[str]
    kind: str


@dataclass(frozen=True)
class HoldingRows:
    territory: list[str]
    law_competences: list[str]
    #: (convention, competences, communes) of each convention in force for the organisation
    grants: list[tuple[uuid.UUID, frozenset[str], frozenset[str]]]


class PrincipalStore:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def user_by_email(self, email: str) -> AppUser | None:
        stmt = (
            select(AppUser)
            .where(col(AppUser.email) == email.strip().lower())
            .execution_options(populate_existing=True)
        )
        return (await self.session.scalars(stmt)).first()

    async def memberships_of(self, user_id: uuid.UUID) -> list[MembershipChoice]:
        stmt = (
            select(
                col(Membership.organisation_id),
                col(Membership.roles),
                col(Organisation.kind),
                col(Organisation.name),
            )
            .join(Organisation, col(Organisation.id) == col(Membership.organisation_id))
            .where(col(Membership.user_id) == user_id, col(Membership.accepted_at).is_not(None))
            .order_by(col(Organisation.name))
        )
        return [MembershipChoice(*r) for r in await self.session.execute(stmt)]

    async def active_membership(
        self, user_id: uuid.UUID, organisation_id: uuid.UUID
    ) -> ActiveMembership | None:
        """Roles and organisation kind, if the user is still an enabled member."""
        stmt = (
            select(col(Membership.roles), col(Organisation.kind), col(AppUser.email))
            .join(Organisation, col(Organisation.id) == col(Membership.organisation_id))
            .join(AppUser, col(AppUser.id) == col(Membership.user_id))
            .where(
                col(Membership.user_id) == user_id,
                col(Membership.organisation_id) == organisation_id,
                col(Membership.accepted_at).is_not(None),
                col(AppUser.disabled_at).is_(None),
            )
        )
        found = (await self.session.execute(stmt)).first()
        return ActiveMembership(*found) if found else None

    async def email_of(self, user_id: uuid.UUID) -> str | None:
        return await self.session.scalar(
            select(col(AppUser.email)).where(col(AppUser.id) == user_id)
        )

    async def client_by_client_id(self, client_id: str) -> ApiClient | None:
        """The client not revoked with this public id (its organisation must exist)."""
        stmt = (
            select(ApiClient)
            .join(Organisation, col(Organisation.id) == col(ApiClient.organisation_id))
            .where(col(ApiClient.client_id) == client_id, col(ApiClient.revoked_at).is_(None))
            .execution_options(populate_existing=True)
        )
        return (await self.session.scalars(stmt)).first()

    async def active_client(
        self, client_pk: uuid.UUID, organisation_id: uuid.UUID
    ) -> ActiveClient | None:
        stmt = (
            select(col(ApiClient.scopes), col(Organisation.kind))
            .join(Organisation, col(Organisation.id) == col(ApiClient.organisation_id))
            .where(
                col(ApiClient.id) == client_pk,
                col(ApiClient.organisation_id) == organisation_id,
                col(ApiClient.revoked_at).is_(None),
            )
        )
        found = (await self.session.execute(stmt)).first()
        return ActiveClient(*found) if found else None

    async def holdings(self, organisation_id: uuid.UUID, on: date) -> HoldingRows:
        """Territory, law competences and conventions in force, in one round trip."""
        kind = (
            select(col(Organisation.kind))
            .where(col(Organisation.id) == organisation_id)
            .scalar_subquery()
        )
        grants = func.convention_grants(organisation_id, on).table_valued(
            "convention_id", "competences", "communes"
        )
        stmt = select(
            func.array(
                select(col(OrganisationCommune.commune_code))
                .where(col(OrganisationCommune.organisation_id) == organisation_id)
                .scalar_subquery()
            ).label("territory"),
            func.array(
                select(col(Competence.code))
                .where(kind == func.any(col(Competence.legal_holder_kinds)))
                .scalar_subquery()
            ).label("law"),
            select(
                func.coalesce(
                    func.json_agg(
                        # by id: the scope's holding takes the first convention that grants a
                        # pair, and the access rule the one of smallest id
                        aggregate_order_by(
                            func.json_build_object(
                                "id",
                                grants.c.convention_id,
                                "competences",
                                grants.c.competences,
                                "communes",
                                grants.c.communes,
                            ),
                            grants.c.convention_id,
                        )
                    ),
                    literal_column("'[]'::json"),
                )
            )
            .scalar_subquery()
            .label("grants"),
        )
        row = (await self.session.execute(stmt)).one()
        return HoldingRows(
            territory=list(row.territory),
            law_competences=list(row.law),
            grants=[
                (uuid.UUID(g["id"]), frozenset(g["competences"]), frozenset(g["communes"]))
                for g in row.grants
            ],
        )

    # refresh tokens ----------------------------------------------------------------------

    async def add_refresh_token(
        self,
        *,
        family_id: uuid.UUID,
        token_hash: str,
        user_id: uuid.UUID,
        organisation_id: uuid.UUID,
        expires_at: datetime,
        now: datetime,
    ) -> None:
        await self.session.execute(
            insert(RefreshToken).values(
                id=uuid.uuid4(),
                family_id=family_id,
                token_hash=token_hash,
                user_id=user_id,
                organisation_id=organisation_id,
                expires_at=expires_at,
                created_at=now,
            )
        )

    async def spend_refresh_token(
        self, token_hash: str, now: datetime
    ) -> tuple[RefreshToken | None, bool]:
        """The token and whether this call spent it. A token already spent (or revoked) is
        returned with ``False``: the caller must treat that as reuse. The conditional UPDATE
        makes two concurrent uses spend it once."""
        spend = (
            update(RefreshToken)
            .where(
                col(RefreshToken.token_hash) == token_hash,
                col(RefreshToken.used_at).is_(None),
                col(RefreshToken.revoked_at).is_(None),
            )
            .values(used_at=now)
            .returning(RefreshToken)
            .execution_options(populate_existing=True)
        )
        spent = (await self.session.scalars(spend)).first()
        if spent is not None:
            return spent, True
        stmt = (
            select(RefreshToken)
            .where(col(RefreshToken.token_hash) == token_hash)
            .execution_options(populate_existing=True)
        )
        return (await self.session.scalars(stmt)).first(), False

    async def revoke_family(self, family_id: uuid.UUID, now: datetime) -> None:
        await self.session.execute(
            update(RefreshToken)
            .where(col(RefreshToken.family_id) == family_id, col(RefreshToken.revoked_at).is_(None))
            .values(revoked_at=now)
        )


class PlatformStore:
    """Set-up writes run by the owner (bootstrap of the platform operator)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def has_platform_admin(self) -> bool:
        stmt = (
            select(col(Membership.id))
            .join(Organisation, col(Organisation.id) == col(Membership.organisation_id))
            .where(
                col(Organisation.kind) == "plateforme",
                literal("admin") == func.any(col(Membership.roles)),
            )
            .limit(1)
        )
        return (await self.session.execute(stmt)).first() is not None

    async def platform_organisation(self, name: str, now: datetime) -> uuid.UUID:
        found = await self.session.scalar(
            select(col(Organisation.id)).where(col(Organisation.kind) == "plateforme")
        )
        if found is not None:
            return found
        new_id = uuid.uuid4()
        await self.session.execute(
            insert(Organisation).values(
                id=new_id,
                name=name,
                search_name=name.lower(),
                kind="plateforme",
                service_area_communes=[],
                service_area_departements=[],
                created_at=now,
                updated_at=now,
            )
        )
        return new_id

    async def add_admin(
        self,
        organisation_id: uuid.UUID,
        email: str,
        full_name: str,
        password_hash: str,
        now: datetime,
    ) -> uuid.UUID:
        user_id: uuid.UUID = (
            await self.session.execute(
                select(func.ensure_user(uuid.uuid4(), email, full_name, password_hash))
            )
        ).scalar_one()
        await self.session.execute(
            insert(Membership)
            .values(
                id=uuid.uuid4(),
                user_id=user_id,
                organisation_id=organisation_id,
                roles=["admin"],
                created_at=now,
                accepted_at=now,
            )
            .on_conflict_do_update(
                index_elements=["user_id", "organisation_id"], set_={"roles": ["admin"]}
            )
        )
        return user_id
