"""Organisations (the public directory), their territory and API clients, and holdings."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    String,
    Uuid,
    cast,
    delete,
    func,
    insert,
    literal,
    null,
    or_,
    select,
    tuple_,
    union_all,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from api.auth.scope import Scope
from api.db.tables import (
    ApiClient,
    Commune,
    Competence,
    Departement,
    Organisation,
    OrganisationCommune,
)
from api.db.versioned import VersionedCache
from api.domain.catalogue import CompetenceDef
from api.domain.conventions.repository import convention_holdings

#: the competence catalogue, as the last request of this process read it
_CATALOGUE: VersionedCache[list[CompetenceDef]] = VersionedCache(size=1)


class DirectoryEntry(NamedTuple):
    """An organisation as the directory shows it: with the size of its territory."""

    organisation: Organisation
    communes_count: int


class CompetentOrganisation(NamedTuple):
    """An organisation holding a competence on a commune, and why."""

    id: uuid.UUID
    name: str
    kind: str
    source: str
    convention_id: uuid.UUID | None


#: who holds a competence on a commune on a day, by (competence, commune, day)
_COMPETENT: VersionedCache[list[CompetentOrganisation]] = VersionedCache(size=10_000)


class Holding(NamedTuple):
    """A competence an organisation holds on a commune, and why."""

    competence: str
    commune: str
    source: str
    convention_id: uuid.UUID | None


def _communes_count() -> Any:
    return (
        select(func.count())
        .where(col(OrganisationCommune.organisation_id) == col(Organisation.id))
        .scalar_subquery()
        .label("communes_count")
    )


class OrganisationStore:
    """The organisation directory and territories: public, no scope needed to read."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        # the catalogue, read once per request (several rules of one use case consult it)
        self._competences: list[CompetenceDef] | None = None

    async def insert(self, organisation: Organisation, communes: Sequence[str]) -> None:
        self.session.add(organisation)
        await self.session.flush()
        await self.set_territory(organisation.id, communes)

    async def set_territory(self, organisation_id: uuid.UUID, communes: Sequence[str]) -> None:
        await self.session.execute(
            delete(OrganisationCommune).where(
                col(OrganisationCommune.organisation_id) == organisation_id
            )
        )
        if communes:
            await self.session.execute(
                insert(OrganisationCommune),
                [{"organisation_id": organisation_id, "commune_code": c} for c in communes],
            )

    async def get(self, organisation_id: uuid.UUID) -> Organisation | None:
        stmt = (
            select(Organisation)
            .where(col(Organisation.id) == organisation_id)
            .execution_options(populate_existing=True)
        )
        return (await self.session.scalars(stmt)).first()

    async def entry(self, organisation_id: uuid.UUID) -> DirectoryEntry | None:
        stmt = (
            select(Organisation, _communes_count())
            .where(col(Organisation.id) == organisation_id)
            .execution_options(populate_existing=True)
        )
        found = (await self.session.execute(stmt)).first()
        return DirectoryEntry(found[0], found[1]) if found else None

    async def directory(
        self,
        *,
        kind: str | None,
        commune: str | None,
        folded_query: str | None,
        after: Sequence[Any] | None,
        limit: int,
    ) -> list[DirectoryEntry]:
        """By name then id; ``limit + 1`` entries at most."""
        conditions: list[ColumnElement[bool]] = []
        if kind:
            conditions.append(col(Organisation.kind) == kind)
        if commune:
            conditions.append(
                col(Organisation.id).in_(
                    select(col(OrganisationCommune.organisation_id)).where(
                        col(OrganisationCommune.commune_code) == commune
                    )
                )
            )
        if folded_query:
            for word in folded_query.split():
                conditions.append(
                    func.concat(" ", col(Organisation.search_name)).contains(f" {word}")
                )
        key = (col(Organisation.name), cast(col(Organisation.id), String))
        stmt = select(Organisation, _communes_count()).where(*conditions)
        if after is not None:
            stmt = stmt.where(tuple_(*key) > tuple_(*(literal(v) for v in after)))
        stmt = stmt.order_by(*key).limit(limit + 1).execution_options(populate_existing=True)
        return [DirectoryEntry(o, n) for o, n in (await self.session.execute(stmt)).all()]

    async def update(
        self, organisation_id: uuid.UUID, version: int, values: dict[str, Any]
    ) -> bool:
        """Apply ``values`` if the row is still at ``version``; False when it moved on."""
        stmt = (
            update(Organisation)
            .where(col(Organisation.id) == organisation_id, col(Organisation.version) == version)
            .values(**values, version=col(Organisation.version) + 1)
            .returning(col(Organisation.id))
        )
        return (await self.session.execute(stmt)).first() is not None

    async def existing_communes(self, codes: Sequence[str]) -> set[str]:
        stmt = select(col(Commune.code)).where(col(Commune.code).in_(list(codes)))
        return set((await self.session.scalars(stmt)).all())

    async def existing_departements(self, codes: Sequence[str]) -> set[str]:
        stmt = select(col(Departement.code)).where(col(Departement.code).in_(list(codes)))
        return set((await self.session.scalars(stmt)).all())

    async def communes_where(
        self, *, departements: Sequence[str] = (), epci: str | None = None
    ) -> list[str]:
        conditions: list[ColumnElement[bool]] = []
        if departements:
            conditions.append(col(Commune.departement_code).in_(list(departements)))
        if epci:
            conditions.append(col(Commune.epci_siren) == epci)
        if not conditions:
            return []
        stmt = select(col(Commune.code)).where(or_(*conditions)).order_by(col(Commune.code))
        return list((await self.session.scalars(stmt)).all())

    async def competences(self) -> list[CompetenceDef]:
        """The catalogue, read once per access version by this process (api.db.versioned)."""
        if self._competences is None:
            known = _CATALOGUE.get(self.session, "competences")
            if known is None:
                known = await self._read_competences()
                _CATALOGUE.put(self.session, "competences", known)
            self._competences = known
        return self._competences

    async def _read_competences(self) -> list[CompetenceDef]:
        stmt = select(
            col(Competence.code),
            col(Competence.label),
            col(Competence.legal_holder_kinds),
            col(Competence.delegable_to),
            col(Competence.sensitive),
        )
        return [
            CompetenceDef(code, label, frozenset(holders), frozenset(delegates), sensitive)
            for code, label, holders, delegates, sensitive in await self.session.execute(stmt)
        ]

    async def sensitive_competences(self) -> frozenset[str]:
        """Codes whose records only cleared users see (``ase``, ``violences``: §4)."""
        return frozenset(c.code for c in await self.competences() if c.sensitive)

    # holdings and the "qui fait quoi" directory ---------------------------------------

    async def competent(
        self, competence: str, commune: str, on: date
    ) -> list[CompetentOrganisation]:
        """Organisations holding ``competence`` on ``commune`` on ``on``, with the source:
        read once per access version by this process (every table it is built from,
        organisations, their communes, conventions and the catalogue, bumps it), as every
        referral and orientation sent asks it."""
        key = (competence, commune, on)
        known = _COMPETENT.get(self.session, key)
        if known is None:
            known = await self._read_competent(competence, commune, on)
            _COMPETENT.put(self.session, key, known)
        return list(known)

    async def _read_competent(
        self, competence: str, commune: str, on: date
    ) -> list[CompetentOrganisation]:
        law = (
            select(
                col(Organisation.id),
                col(Organisation.name),
                col(Organisation.kind),
                literal("law").label("source"),
                cast(null(), Uuid).label("convention_id"),
            )
            .join(
                OrganisationCommune,
                col(OrganisationCommune.organisation_id) == col(Organisation.id),
            )
            .join(Competence, col(Competence.code) == competence)
            .where(
                col(OrganisationCommune.commune_code) == commune,
                col(Organisation.kind) == func.any(col(Competence.legal_holder_kinds)),
            )
        )
        held = convention_holdings(None, competence, commune, on)
        delegated = select(
            col(Organisation.id),
            col(Organisation.name),
            col(Organisation.kind),
            literal("convention"),
            held.c.convention_id,
        ).join(Organisation, col(Organisation.id) == held.c.grantee_id)
        rows = await self.session.execute(union_all(law, delegated))
        return [CompetentOrganisation(*r) for r in rows]

    async def holdings(
        self,
        organisation_id: uuid.UUID,
        *,
        competence: str | None,
        commune: str | None,
        on: date,
        after: Sequence[Any] | None,
        limit: int,
    ) -> list[Holding]:
        """By competence, commune and source; ``limit + 1`` holdings at most."""
        law = (
            select(
                col(Competence.code).label("competence"),
                col(OrganisationCommune.commune_code).label("commune"),
                literal("law").label("source"),
                cast(null(), Uuid).label("convention_id"),
            )
            .select_from(Organisation)
            .join(
                OrganisationCommune,
                col(OrganisationCommune.organisation_id) == col(Organisation.id),
            )
            .join(
                Competence, col(Organisation.kind) == func.any(col(Competence.legal_holder_kinds))
            )
            .where(col(Organisation.id) == organisation_id)
        )
        held = convention_holdings(organisation_id, competence, commune, on)
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
        return [Holding(*r) for r in await self.session.execute(stmt)]


class ApiClientStore:
    """The API clients of the organisations the scope may manage."""

    def __init__(self, session: AsyncSession, scope: Scope) -> None:
        self.session = session
        self.scope = scope

    async def add(self, client: ApiClient) -> None:
        self.session.add(client)
        await self.session.flush()

    async def of_organisation(self, organisation_id: uuid.UUID) -> list[ApiClient]:
        stmt = (
            select(ApiClient)
            .where(
                col(ApiClient.organisation_id) == organisation_id,
                col(ApiClient.revoked_at).is_(None),
            )
            .order_by(col(ApiClient.created_at))
            .execution_options(populate_existing=True)
        )
        return list((await self.session.scalars(stmt)).all())

    async def revoke(self, organisation_id: uuid.UUID, client_id: str, now: datetime) -> bool:
        stmt = (
            update(ApiClient)
            .where(
                col(ApiClient.organisation_id) == organisation_id,
                col(ApiClient.client_id) == client_id,
                col(ApiClient.revoked_at).is_(None),
            )
            .values(revoked_at=now)
            .returning(col(ApiClient.id))
        )
        return (await self.session.execute(stmt)).first() is not None
