"""How routers reach the organisation use cases: built from the request's session (and
scope), so that routers import no store (the ``routers-never-query`` layer contract)."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from api.auth.principals import PrincipalStore
from api.auth.scope import Scope
from api.domain.audit.repository import AuditLog
from api.domain.catalogue import OrganisationKind
from api.domain.organisations import api_clients, holdings, service
from api.domain.organisations.repository import ApiClientStore, OrganisationStore
from api.domain.organisations.schemas import (
    ApiClientCreate,
    ApiClientCreated,
    ApiClientRead,
    CompetentRead,
    HoldingRead,
    MeRead,
    OrganisationCreate,
    OrganisationRead,
    OrganisationUpdate,
    RetentionRead,
    RetentionUpdate,
)
from api.http.schemas import Page


class Directory:
    """The public reads: the organisation directory, holdings, who is competent."""

    def __init__(self, session: AsyncSession) -> None:
        self.store = OrganisationStore(session)

    async def page(
        self,
        *,
        kind: OrganisationKind | None,
        commune: str | None,
        q: str | None,
        cursor: str | None,
        limit: int,
    ) -> Page[OrganisationRead]:
        return await service.list_organisations(
            self.store, kind=kind, commune=commune, q=q, cursor=cursor, limit=limit
        )

    async def read(self, organisation_id: uuid.UUID) -> tuple[OrganisationRead, str]:
        return await service.read_organisation(self.store, organisation_id)

    async def holdings(
        self,
        organisation_id: uuid.UUID,
        *,
        competence: str | None,
        commune: str | None,
        cursor: str | None,
        limit: int,
    ) -> Page[HoldingRead]:
        return await holdings.list_holdings(
            self.store,
            organisation_id,
            competence=competence,
            commune=commune,
            cursor=cursor,
            limit=limit,
        )

    async def competent(self, competence: str, commune: str, on: date | None) -> CompetentRead:
        return await holdings.competent(self.store, competence, commune, on)


class Organisations:
    """What a signed-in caller does to organisations: the platform operator's creation, an
    admin's contact fields, retention and API clients, and who the caller is."""

    def __init__(self, scope: Scope, session: AsyncSession) -> None:
        self.scope = scope
        self.session = session
        self.store = OrganisationStore(session)

    async def create(self, body: OrganisationCreate) -> OrganisationRead:
        return await service.create_organisation(self.scope, self.store, body)

    async def update(
        self, organisation_id: uuid.UUID, body: OrganisationUpdate, if_match: str
    ) -> tuple[OrganisationRead, str]:
        """The organisation as updated, and its new ETag."""
        await service.update_organisation(self.scope, self.store, organisation_id, body, if_match)
        return await service.read_organisation(self.store, organisation_id)

    async def retention(self, organisation_id: uuid.UUID) -> tuple[RetentionRead, str]:
        return await service.read_retention(self.scope, self.store, organisation_id)

    async def set_retention(
        self, organisation_id: uuid.UUID, body: RetentionUpdate, if_match: str
    ) -> tuple[RetentionRead, str]:
        return await service.set_retention(
            self.scope, self.store, self._audit(), organisation_id, body, if_match
        )

    def _audit(self) -> AuditLog:
        return AuditLog(self.session, self.scope)

    def _clients(self) -> ApiClientStore:
        return ApiClientStore(self.session, self.scope)

    async def create_api_client(
        self, organisation_id: uuid.UUID, body: ApiClientCreate
    ) -> ApiClientCreated:
        return await api_clients.create_api_client(
            self.scope, self.store, self._clients(), self._audit(), organisation_id, body
        )

    async def api_clients(self, organisation_id: uuid.UUID) -> list[ApiClientRead]:
        return await api_clients.list_api_clients(
            self.scope, self.store, self._clients(), organisation_id
        )

    async def revoke_api_client(self, organisation_id: uuid.UUID, client_id: str) -> None:
        await api_clients.revoke_api_client(
            self.scope, self.store, self._clients(), self._audit(), organisation_id, client_id
        )

    async def whoami(self) -> MeRead:
        return await service.whoami(self.scope, self.store, PrincipalStore(self.session))
