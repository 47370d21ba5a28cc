"""Reads and writes of the token endpoint and of scope building.

These run before any scope exists: the caller sets the ``auth`` database context (token
endpoint) or the claimed organisation and principal (scope building) first, so row-level
security still applies.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Row, func, literal, literal_column, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from api.db.tables import ApiClient, AppUser, Competence, Membership, Organisation, RefreshToken
from api.db.tables import OrganisationCommune as OrgCommune

_user = AppUser.__table__  # type: ignore[attr-defined]
_membership = Membership.__table__  # type: ignore[attr-defined]
_org = Organisation.__table__  # type: ignore[attr-defined]
_client = ApiClient.__table__  # type: ignore[attr-defined]
_refresh = RefreshToken.__table__  # type: ignore[attr-defined]
_competence = Competence.__table__  # type: ignore[attr-defined]
_org_commune = OrgCommune.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class HoldingRows:
    territory: list[str]
    law_competences: list[str]
    #: (convention, competences, communes) of each convention in force for the organisation
    grants: list[tuple[uuid.UUID, frozenset[str], frozenset[str]]]


class PrincipalStore:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def user_by_email(self, email: str) -> Row[tuple[object, ...]] | None:
        stmt = select(_user).where(_user.c.email == email.strip().lower())
        return (await self.session.execute(stmt)).first()

    async def memberships_of(self, user_id: uuid.UUID) -> list[Row[tuple[object, ...]]]:
        stmt = (
            select(
                _membership.c.organisation_id,
                _membership.c.roles,
                _org.c.kind,
                _org.c.name,
            )
            .join(_org, _org.c.id == _membership.c.organisation_id)
            .where(_membership.c.user_id == user_id, _membership.c.accepted_at.is_not(None))
            .order_by(_org.c.name)
        )
        return list((await self.session.execute(stmt)).all())

    async def active_membership(
        self, user_id: uuid.UUID, organisation_id: uuid.UUID
    ) -> Row[tuple[object, ...]] | None:
        """Roles and organisation kind, if the user is still an enabled member."""
        stmt = (
            select(_membership.c.roles, _org.c.kind, _user.c.email)
            .join(_org, _org.c.id == _membership.c.organisation_id)
            .join(_user, _user.c.id == _membership.c.user_id)
            .where(
                _membership.c.user_id == user_id,
                _membership.c.organisation_id == organisation_id,
                _membership.c.accepted_at.is_not(None),
                _user.c.disabled_at.is_(None),
            )
        )
        return (await self.session.execute(stmt)).first()

    async def email_of(self, user_id: uuid.UUID) -> str | None:
        email: str | None = await self.session.scalar(
            select(_user.c.email).where(_user.c.id == user_id)
        )
        return email

    async def client_by_client_id(self, client_id: str) -> Row[tuple[object, ...]] | None:
        stmt = (
            select(_client, _org.c.kind.label("organisation_kind"))
            .join(_org, _org.c.id == _client.c.organisation_id)
            .where(_client.c.client_id == client_id, _client.c.revoked_at.is_(None))
        )
        return (await self.session.execute(stmt)).first()

    async def active_client(
        self, client_pk: uuid.UUID, organisation_id: uuid.UUID
    ) -> Row[tuple[object, ...]] | None:
        stmt = (
            select(_client.c.scopes, _org.c.kind)
            .join(_org, _org.c.id == _client.c.organisation_id)
            .where(
                _client.c.id == client_pk,
                _client.c.organisation_id == organisation_id,
                _client.c.revoked_at.is_(None),
            )
        )
        return (await self.session.execute(stmt)).first()

    async def holdings(self, organisation_id: uuid.UUID, on: date) -> HoldingRows:
        """Territory, law competences and conventions in force, in one round trip."""
        kind = select(_org.c.kind).where(_org.c.id == organisation_id).scalar_subquery()
        grants = func.convention_grants(organisation_id, on).table_valued(
            "convention_id", "competences", "communes"
        )
        stmt = select(
            func.array(
                select(_org_commune.c.commune_code)
                .where(_org_commune.c.organisation_id == organisation_id)
                .scalar_subquery()
            ).label("territory"),
            func.array(
                select(_competence.c.code)
                .where(kind == func.any(_competence.c.legal_holder_kinds))
                .scalar_subquery()
            ).label("law"),
            select(
                func.coalesce(
                    func.json_agg(
                        func.json_build_object(
                            "id",
                            grants.c.convention_id,
                            "competences",
                            grants.c.competences,
                            "communes",
                            grants.c.communes,
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
            insert(_refresh).values(
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
    ) -> tuple[Row[tuple[object, ...]] | None, bool]:
        """The token's row and whether this call spent it. A token already spent (or
        revoked) is returned with ``False``: the caller must treat that as reuse. The
        conditional UPDATE makes two concurrent uses spend it once."""
        spent = (
            await self.session.execute(
                update(_refresh)
                .where(
                    _refresh.c.token_hash == token_hash,
                    _refresh.c.used_at.is_(None),
                    _refresh.c.revoked_at.is_(None),
                )
                .values(used_at=now)
                .returning(*_refresh.c)
            )
        ).first()
        if spent is not None:
            return spent, True
        row = (
            await self.session.execute(select(_refresh).where(_refresh.c.token_hash == token_hash))
        ).first()
        return row, False

    async def revoke_family(self, family_id: uuid.UUID, now: datetime) -> None:
        await self.session.execute(
            update(_refresh)
            .where(_refresh.c.family_id == family_id, _refresh.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )


class PlatformStore:
    """Set-up writes run by the owner (bootstrap of the platform operator)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def has_platform_admin(self) -> bool:
        stmt = (
            select(_membership.c.id)
            .join(_org, _org.c.id == _membership.c.organisation_id)
            .where(_org.c.kind == "plateforme", literal("admin") == func.any(_membership.c.roles))
            .limit(1)
        )
        return (await self.session.execute(stmt)).first() is not None

    async def platform_organisation(self, name: str, now: datetime) -> uuid.UUID:
        found = await self.session.scalar(select(_org.c.id).where(_org.c.kind == "plateforme"))
        if found is not None:
            return uuid.UUID(str(found))
        new_id = uuid.uuid4()
        await self.session.execute(
            insert(_org).values(
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
            insert(_membership)
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
