"""Organisations (public directory), their members and API clients, conventions, holdings."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import (
    Row,
    String,
    Uuid,
    cast,
    delete,
    func,
    literal,
    null,
    or_,
    select,
    tuple_,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth.scope import Scope
from api.db.tables import (
    ApiClient,
    AppUser,
    Commune,
    Competence,
    Convention,
    ConventionEvent,
    Departement,
    Membership,
    Organisation,
)
from api.db.tables import OrganisationCommune as OrgCommune
from api.db.versioned import VersionedCache

#: the competence catalogue, as the last request of this process read it
_CATALOGUE: VersionedCache[list[Any]] = VersionedCache(size=1)

_org = Organisation.__table__  # type: ignore[attr-defined]
_org_commune = OrgCommune.__table__  # type: ignore[attr-defined]
_commune = Commune.__table__  # type: ignore[attr-defined]
_competence = Competence.__table__  # type: ignore[attr-defined]
_user = AppUser.__table__  # type: ignore[attr-defined]
_membership = Membership.__table__  # type: ignore[attr-defined]
_client = ApiClient.__table__  # type: ignore[attr-defined]
_convention = Convention.__table__  # type: ignore[attr-defined]
_event = ConventionEvent.__table__  # type: ignore[attr-defined]

AnyRow = Row[tuple[Any, ...]]


def _convention_holdings(
    grantee: uuid.UUID | None, competence: str | None, commune: str | None, on: date
) -> Any:
    return func.convention_holdings(grantee, competence, commune, on).table_valued(
        "grantee_id", "competence", "commune", "convention_id"
    )


class OrganisationStore:
    """The partner directory and territories: public, no scope needed to read."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        # the catalogue, read once per request (several rules of one use case consult it)
        self._competences: list[AnyRow] | None = None

    async def insert(self, values: dict[str, Any], communes: Sequence[str]) -> AnyRow:
        row = (await self.session.execute(insert(_org).values(**values).returning(*_org.c))).one()
        await self.set_territory(row.id, communes)
        return row

    async def set_territory(self, organisation_id: uuid.UUID, communes: Sequence[str]) -> None:
        await self.session.execute(
            delete(_org_commune).where(_org_commune.c.organisation_id == organisation_id)
        )
        if communes:
            await self.session.execute(
                insert(_org_commune),
                [{"organisation_id": organisation_id, "commune_code": c} for c in communes],
            )

    async def get(self, organisation_id: uuid.UUID) -> AnyRow | None:
        return (
            await self.session.execute(
                select(_org, self._communes_count()).where(_org.c.id == organisation_id)
            )
        ).first()

    def _communes_count(self) -> Any:
        return (
            select(func.count())
            .where(_org_commune.c.organisation_id == _org.c.id)
            .scalar_subquery()
            .label("communes_count")
        )

    async def directory(
        self,
        *,
        kind: str | None,
        commune: str | None,
        folded_query: str | None,
        after: Sequence[Any] | None,
        limit: int,
    ) -> list[AnyRow]:
        conditions = []
        if kind:
            conditions.append(_org.c.kind == kind)
        if commune:
            conditions.append(
                _org.c.id.in_(
                    select(_org_commune.c.organisation_id).where(
                        _org_commune.c.commune_code == commune
                    )
                )
            )
        if folded_query:
            for word in folded_query.split():
                conditions.append(func.concat(" ", _org.c.search_name).contains(f" {word}"))
        key = (_org.c.name, cast(_org.c.id, String))
        stmt = select(_org, self._communes_count()).where(*conditions)
        if after is not None:
            stmt = stmt.where(tuple_(*key) > tuple_(*(literal(v) for v in after)))
        return list((await self.session.execute(stmt.order_by(*key).limit(limit + 1))).all())

    async def update(
        self, organisation_id: uuid.UUID, version: int, values: dict[str, Any]
    ) -> AnyRow | None:
        """Apply ``values`` if the row is still at ``version``; None when it moved on."""
        stmt = (
            update(_org)
            .where(_org.c.id == organisation_id, _org.c.version == version)
            .values(**values, version=_org.c.version + 1)
            .returning(_org.c.id)
        )
        row: AnyRow | None = (await self.session.execute(stmt)).first()
        return row

    async def existing_communes(self, codes: Sequence[str]) -> set[str]:
        stmt = select(_commune.c.code).where(_commune.c.code.in_(list(codes)))
        return set((await self.session.execute(stmt)).scalars())

    async def existing_departements(self, codes: Sequence[str]) -> set[str]:
        dep = Departement.__table__  # type: ignore[attr-defined]
        stmt = select(dep.c.code).where(dep.c.code.in_(list(codes)))
        return set((await self.session.execute(stmt)).scalars())

    async def communes_where(
        self, *, departements: Sequence[str] = (), epci: str | None = None
    ) -> list[str]:
        conditions = []
        if departements:
            conditions.append(_commune.c.departement_code.in_(list(departements)))
        if epci:
            conditions.append(_commune.c.epci_siren == epci)
        if not conditions:
            return []
        stmt = select(_commune.c.code).where(or_(*conditions)).order_by(_commune.c.code)
        return list((await self.session.execute(stmt)).scalars())

    async def competences(self) -> list[AnyRow]:
        """The catalogue, read once per access version by this process (api.db.versioned)."""
        if self._competences is None:
            known = _CATALOGUE.get(self.session, "competences")
            if known is None:
                known = list((await self.session.execute(select(_competence))).all())
                _CATALOGUE.put(self.session, "competences", known)
            self._competences = known
        return self._competences

    async def sensitive_competences(self) -> frozenset[str]:
        """Codes whose records only cleared users see (``ase``, ``violences``: §4)."""
        return frozenset(r.code for r in await self.competences() if r.sensitive)

    # holdings and the "qui fait quoi" directory ---------------------------------------

    async def competent(self, competence: str, commune: str, on: date) -> list[AnyRow]:
        """Organisations holding ``competence`` on ``commune`` on ``on``, with the source."""
        law = (
            select(
                _org.c.id,
                _org.c.name,
                _org.c.kind,
                literal("law").label("source"),
                cast(null(), Uuid).label("convention_id"),
            )
            .join(_org_commune, _org_commune.c.organisation_id == _org.c.id)
            .join(_competence, _competence.c.code == competence)
            .where(
                _org_commune.c.commune_code == commune,
                _org.c.kind == func.any(_competence.c.legal_holder_kinds),
            )
        )
        held = _convention_holdings(None, competence, commune, on)
        delegated = select(
            _org.c.id,
            _org.c.name,
            _org.c.kind,
            literal("convention"),
            held.c.convention_id,
        ).join(_org, _org.c.id == held.c.grantee_id)
        return list((await self.session.execute(union_all(law, delegated))).all())

    async def holdings(
        self,
        organisation_id: uuid.UUID,
        *,
        competence: str | None,
        commune: str | None,
        on: date,
        after: Sequence[Any] | None,
        limit: int,
    ) -> list[AnyRow]:
        law = (
            select(
                _competence.c.code.label("competence"),
                _org_commune.c.commune_code.label("commune"),
                literal("law").label("source"),
                cast(null(), Uuid).label("convention_id"),
            )
            .select_from(_org)
            .join(_org_commune, _org_commune.c.organisation_id == _org.c.id)
            .join(_competence, _org.c.kind == func.any(_competence.c.legal_holder_kinds))
            .where(_org.c.id == organisation_id)
        )
        held = _convention_holdings(organisation_id, competence, commune, on)
        delegated = select(
            held.c.competence, held.c.commune, literal("convention"), held.c.convention_id
        )
        both = union_all(law, delegated).subquery()
        conditions = []
        if competence:
            conditions.append(both.c.competence == competence)
        if commune:
            conditions.append(both.c.commune == commune)
        key = (both.c.competence, both.c.commune, both.c.source)
        if after is not None:
            conditions.append(tuple_(*key) > tuple_(*(literal(v) for v in after)))
        stmt = select(both).where(*conditions).order_by(*key).limit(limit + 1)
        return list((await self.session.execute(stmt)).all())


class MemberStore:
    """Members of the scope's organisation (row-level security repeats the boundary)."""

    def __init__(self, session: AsyncSession, scope: Scope) -> None:
        self.session = session
        self.scope = scope

    def _columns(self) -> tuple[Any, ...]:
        return (
            _membership.c.id,
            _membership.c.user_id,
            _membership.c.organisation_id,
            _membership.c.roles,
            _membership.c.created_at,
            _membership.c.accepted_at,
            _user.c.email,
            _user.c.full_name,
        )

    async def of_organisation(self, organisation_id: uuid.UUID) -> list[AnyRow]:
        stmt = (
            select(*self._columns())
            .join(_user, _user.c.id == _membership.c.user_id)
            .where(_membership.c.organisation_id == organisation_id)
            .order_by(_user.c.email)
        )
        return list((await self.session.execute(stmt)).all())

    async def get(self, organisation_id: uuid.UUID, user_id: uuid.UUID) -> AnyRow | None:
        stmt = (
            select(*self._columns())
            .join(_user, _user.c.id == _membership.c.user_id)
            .where(
                _membership.c.organisation_id == organisation_id,
                _membership.c.user_id == user_id,
            )
        )
        return (await self.session.execute(stmt)).first()

    async def set_roles(
        self, organisation_id: uuid.UUID, user_id: uuid.UUID, roles: Sequence[str]
    ) -> bool:
        stmt = (
            update(_membership)
            .where(
                _membership.c.organisation_id == organisation_id,
                _membership.c.user_id == user_id,
            )
            .values(roles=list(roles))
            .returning(_membership.c.id)
        )
        return (await self.session.execute(stmt)).first() is not None

    async def remove(self, organisation_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        stmt = (
            delete(_membership)
            .where(
                _membership.c.organisation_id == organisation_id,
                _membership.c.user_id == user_id,
            )
            .returning(_membership.c.id)
        )
        return (await self.session.execute(stmt)).first() is not None


class ApiClientStore:
    def __init__(self, session: AsyncSession, scope: Scope) -> None:
        self.session = session
        self.scope = scope

    async def add(self, values: dict[str, Any]) -> AnyRow:
        return (
            await self.session.execute(insert(_client).values(**values).returning(*_client.c))
        ).one()

    async def of_organisation(self, organisation_id: uuid.UUID) -> list[AnyRow]:
        stmt = (
            select(_client)
            .where(_client.c.organisation_id == organisation_id, _client.c.revoked_at.is_(None))
            .order_by(_client.c.created_at)
        )
        return list((await self.session.execute(stmt)).all())

    async def revoke(self, organisation_id: uuid.UUID, client_id: str, now: Any) -> bool:
        stmt = (
            update(_client)
            .where(
                _client.c.organisation_id == organisation_id,
                _client.c.client_id == client_id,
                _client.c.revoked_at.is_(None),
            )
            .values(revoked_at=now)
            .returning(_client.c.id)
        )
        return (await self.session.execute(stmt)).first() is not None


class ConventionStore:
    """Conventions the scope's organisation is a party to."""

    def __init__(self, session: AsyncSession, scope: Scope) -> None:
        self.session = session
        self.scope = scope

    def _visible(self) -> Any:
        org = self.scope.organisation_id
        return or_(_convention.c.grantor_id == org, _convention.c.grantee_id == org)

    async def add(self, values: dict[str, Any]) -> AnyRow:
        stmt = insert(_convention).values(**values).returning(*_convention.c)
        return (await self.session.execute(stmt)).one()

    async def get(self, convention_id: uuid.UUID, *, for_update: bool = False) -> AnyRow | None:
        stmt = select(_convention).where(_convention.c.id == convention_id, self._visible())
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).first()

    async def page(
        self, *, side: str | None, status: str | None, after: Sequence[Any] | None, limit: int
    ) -> list[AnyRow]:
        org = self.scope.organisation_id
        conditions = [self._visible()]
        if side == "grantor":
            conditions.append(_convention.c.grantor_id == org)
        elif side == "grantee":
            conditions.append(_convention.c.grantee_id == org)
        if status:
            conditions.append(_convention.c.status == status)
        key = (_convention.c.created_at, _convention.c.id)
        stmt = select(_convention).where(*conditions)
        if after is not None:
            stmt = stmt.where(tuple_(*key) < tuple_(*(literal(v) for v in after)))
        stmt = stmt.order_by(*(k.desc() for k in key)).limit(limit + 1)
        return list((await self.session.execute(stmt)).all())

    async def set_status(self, convention_id: uuid.UUID, status: str, now: Any) -> AnyRow:
        stmt = (
            update(_convention)
            .where(_convention.c.id == convention_id, self._visible())
            .values(status=status, updated_at=now, version=_convention.c.version + 1)
            .returning(*_convention.c)
        )
        return (await self.session.execute(stmt)).one()

    async def add_event(self, values: dict[str, Any]) -> None:
        await self.session.execute(insert(_event).values(**values))

    async def events(self, convention_ids: Sequence[uuid.UUID]) -> list[AnyRow]:
        org = self.scope.organisation_id
        stmt = (
            select(_event)
            .where(
                _event.c.convention_id.in_(list(convention_ids)),
                or_(_event.c.grantor_id == org, _event.c.grantee_id == org),
            )
            .order_by(_event.c.at, _event.c.id)
        )
        return list((await self.session.execute(stmt)).all())
