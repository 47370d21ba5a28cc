"""Organisations: the directory's reads, creation by the platform operator, contact fields and
retention set by their own admins, and who the caller is (``/v1/me``)."""

from __future__ import annotations

import uuid

from api.auth.permissions import Action
from api.auth.principals import PrincipalStore
from api.auth.scope import Scope
from api.db.tables import Organisation
from api.db.versioned import VersionedCache
from api.domain import clock
from api.domain.audit.repository import AuditLog
from api.domain.catalogue import OrganisationKind
from api.domain.organisations.repository import DirectoryEntry, OrganisationStore
from api.domain.organisations.schemas import (
    MeRead,
    OrganisationCreate,
    OrganisationRead,
    OrganisationRef,
    OrganisationUpdate,
    RetentionRead,
    RetentionUpdate,
    ServiceArea,
    TerritorySummary,
)
from api.domain.organisations.territory import SERVICE_AREA_KINDS, territory_of
from api.domain.text import fold
from api.http.schemas import Page, as_text, decode_keyset, encode_cursor
from api.problems import Forbidden, NotFound, PreconditionFailed

#: the organisation and e-mail ``/v1/me`` names, by principal and organisation: both are
#: covered by the access version (organisation and app_user changes replace it)
_WHO: VersionedCache[tuple[OrganisationRef, str | None]] = VersionedCache()

_K = OrganisationKind


def organisation_read(entry: DirectoryEntry) -> OrganisationRead:
    o = entry.organisation
    return OrganisationRead(
        id=o.id,
        name=o.name,
        kind=o.kind,
        siret=o.siret,
        commune=o.commune_code,
        epci=o.epci_siren,
        departement=o.departement_code,
        service_area=ServiceArea(
            communes=o.service_area_communes, departements=o.service_area_departements
        ),
        email=o.email,
        phone=o.phone,
        address=o.address,
        territory=TerritorySummary(communes_count=entry.communes_count),
    )


async def create_organisation(
    scope: Scope, store: OrganisationStore, body: OrganisationCreate
) -> OrganisationRead:
    scope.require(Action.MANAGE_ORGANISATIONS)
    communes = await territory_of(store, body)
    now = clock.now()
    area = body.service_area or ServiceArea()
    declares_area = body.kind in SERVICE_AREA_KINDS
    organisation = Organisation(
        id=uuid.uuid4(),
        name=body.name,
        search_name=fold(body.name),
        kind=body.kind,
        siret=body.siret,
        commune_code=body.commune if body.kind in (_K.COMMUNE, _K.CCAS) else None,
        epci_siren=body.epci if body.kind in (_K.EPCI, _K.CIAS) else None,
        departement_code=body.departement if body.kind == _K.DEPARTEMENT else None,
        service_area_communes=area.communes if declares_area else [],
        service_area_departements=area.departements if declares_area else [],
        email=body.email,
        phone=body.phone,
        address=body.address,
        created_at=now,
        updated_at=now,
    )
    await store.insert(organisation, communes)
    return await get_organisation(store, organisation.id)


async def get_organisation(
    store: OrganisationStore, organisation_id: uuid.UUID
) -> OrganisationRead:
    return (await read_organisation(store, organisation_id))[0]


async def read_organisation(
    store: OrganisationStore, organisation_id: uuid.UUID
) -> tuple[OrganisationRead, str]:
    """The organisation and its ETag."""
    entry = await store.entry(organisation_id)
    if entry is None:
        raise NotFound(detail="No such organisation.")
    return organisation_read(entry), organisation_etag(entry.organisation.version)


async def list_organisations(
    store: OrganisationStore,
    *,
    kind: OrganisationKind | None,
    commune: str | None,
    q: str | None,
    cursor: str | None,
    limit: int,
) -> Page[OrganisationRead]:
    entries = await store.directory(
        kind=kind,
        commune=commune,
        folded_query=fold(q) if q and fold(q) else None,
        after=decode_keyset(cursor, as_text, as_text),
        limit=limit,
    )
    page = entries[:limit]
    last = page[-1].organisation if len(entries) > limit else None
    next_cursor = encode_cursor([last.name, str(last.id)]) if last else None
    return Page[OrganisationRead](
        items=[organisation_read(e) for e in page], next_cursor=next_cursor
    )


def organisation_etag(version: int) -> str:
    return f'"{version}"'


async def update_organisation(
    scope: Scope,
    store: OrganisationStore,
    organisation_id: uuid.UUID,
    body: OrganisationUpdate,
    if_match: str,
) -> OrganisationRead:
    current = await store.get(organisation_id)
    if current is None:
        raise NotFound(detail="No such organisation.")
    changes = body.model_dump(exclude_unset=True)
    if not scope.permits(Action.MANAGE_ORGANISATIONS):
        if scope.organisation_id != organisation_id:
            raise Forbidden(detail="Only the platform operator edits other organisations.")
        scope.require(Action.EDIT_OWN_ORGANISATION)
        if "name" in changes:
            raise Forbidden(detail="The name is changed by the platform operator.")
    if if_match != organisation_etag(current.version):
        raise PreconditionFailed(detail="The organisation changed since you read it.")
    if "name" in changes:
        changes["search_name"] = fold(changes["name"])
    if not await store.update(
        organisation_id, current.version, {**changes, "updated_at": clock.now()}
    ):
        raise PreconditionFailed(detail="The organisation changed since you read it.")
    return await get_organisation(store, organisation_id)


# retention (domain.md §11): the organisation's DPO or admin --------------------------------


def _require_retention_manager(scope: Scope, organisation_id: uuid.UUID) -> None:
    if scope.organisation_id != organisation_id:
        raise Forbidden(detail="Only this organisation's DPO or admin sets its retention.")
    scope.require(Action.MANAGE_RETENTION)


async def read_retention(
    scope: Scope, store: OrganisationStore, organisation_id: uuid.UUID
) -> tuple[RetentionRead, str]:
    """The retention settings and the organisation's ETag."""
    _require_retention_manager(scope, organisation_id)
    row = await store.get(organisation_id)
    if row is None:
        raise NotFound(detail="No such organisation.")
    return RetentionRead.model_validate(row, from_attributes=True), organisation_etag(row.version)


async def set_retention(
    scope: Scope,
    store: OrganisationStore,
    audit: AuditLog,
    organisation_id: uuid.UUID,
    body: RetentionUpdate,
    if_match: str,
) -> tuple[RetentionRead, str]:
    _require_retention_manager(scope, organisation_id)
    current = await store.get(organisation_id)
    if current is None:
        raise NotFound(detail="No such organisation.")
    if if_match != organisation_etag(current.version):
        raise PreconditionFailed(detail="The organisation changed since you read it.")
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    if not await store.update(
        organisation_id, current.version, {**changes, "updated_at": clock.now()}
    ):
        raise PreconditionFailed(detail="The organisation changed since you read it.")
    await audit.record("organisation.retention_update", "organisation", str(organisation_id))
    return await read_retention(scope, store, organisation_id)


async def whoami(scope: Scope, orgs: OrganisationStore, principals: PrincipalStore) -> MeRead:
    key = (scope.principal_id, scope.organisation_id)
    known = _WHO.get(orgs.session, key)
    if known is None:
        org = await orgs.get(scope.organisation_id)
        assert org is not None  # the scope was just built from it
        email = await principals.email_of(scope.user_id) if scope.user_id else None
        known = (OrganisationRef(id=org.id, name=org.name, kind=org.kind), email)
        _WHO.put(orgs.session, key, known)
    organisation, email = known
    return MeRead(
        kind=scope.principal_kind.value,
        id=scope.principal_id,
        email=email,
        organisation=organisation,
        roles=sorted(scope.roles),
        scopes=sorted(scope.client_scopes),
    )
