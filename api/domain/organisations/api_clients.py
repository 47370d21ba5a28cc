"""An organisation's machine clients: created by its own admins, listed and revoked by them
or the platform operator."""

from __future__ import annotations

import secrets
import uuid

from api.auth.passwords import hash_password_off_loop, new_client_secret
from api.auth.permissions import Action
from api.auth.scope import Scope
from api.db.tables import ApiClient
from api.domain import clock
from api.domain.audit.repository import Access, AuditLog
from api.domain.organisations.repository import ApiClientStore, OrganisationStore
from api.domain.organisations.schemas import ApiClientCreate, ApiClientCreated, ApiClientRead
from api.domain.organisations.service import get_organisation
from api.domain.staff.rules import PlatformFirstAdminOnly
from api.problems import Forbidden, NotFound


def _require_admin_of(scope: Scope, organisation_id: uuid.UUID, action: Action) -> None:
    """The organisation's own admin, or the platform operator."""
    if scope.permits(Action.MANAGE_ORGANISATIONS):
        return
    if scope.organisation_id != organisation_id:
        raise Forbidden(detail="Only this organisation's admins manage it.")
    scope.require(action)


async def create_api_client(
    scope: Scope,
    orgs: OrganisationStore,
    clients: ApiClientStore,
    audit: AuditLog,
    organisation_id: uuid.UUID,
    body: ApiClientCreate,
) -> ApiClientCreated:
    await get_organisation(orgs, organisation_id)
    _require_admin_of(scope, organisation_id, Action.MANAGE_API_CLIENTS)
    if scope.organisation_id != organisation_id:
        # a client's secret acts for the organisation, with its scopes' personal data
        raise PlatformFirstAdminOnly(
            detail="API clients are created by the organisation's own admins."
        )
    secret = new_client_secret()
    row = ApiClient(
        id=uuid.uuid4(),
        organisation_id=organisation_id,
        client_id="gu_" + secrets.token_urlsafe(16),
        name=body.name,
        secret_hash=await hash_password_off_loop(secret),
        scopes=sorted({str(s) for s in body.scopes}),
        created_at=clock.now(),
    )
    await clients.add(row)
    await audit.record(
        "api_client.create", "api_client", row.client_id, purpose=" ".join(row.scopes)
    )
    return ApiClientCreated(
        client_id=row.client_id,
        name=row.name,
        scopes=row.scopes,
        created_at=row.created_at,
        client_secret=secret,
    )


async def list_api_clients(
    scope: Scope, orgs: OrganisationStore, clients: ApiClientStore, organisation_id: uuid.UUID
) -> list[ApiClientRead]:
    await get_organisation(orgs, organisation_id)
    _require_admin_of(scope, organisation_id, Action.MANAGE_API_CLIENTS)
    return [
        ApiClientRead.model_validate(r, from_attributes=True)
        for r in await clients.of_organisation(organisation_id)
    ]


async def revoke_api_client(
    scope: Scope,
    orgs: OrganisationStore,
    clients: ApiClientStore,
    audit: AuditLog,
    organisation_id: uuid.UUID,
    client_id: str,
) -> None:
    """The organisation's admins, or the platform operator (revoking only takes away)."""
    await get_organisation(orgs, organisation_id)
    _require_admin_of(scope, organisation_id, Action.MANAGE_API_CLIENTS)
    if not await clients.revoke(organisation_id, client_id, clock.now()):
        raise NotFound(detail="No such API client.")
    await audit.record_for(organisation_id, Access("api_client.revoke", "api_client", client_id))
