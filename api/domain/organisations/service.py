"""Organisations and their territory, members and API clients, holdings and directory."""

from __future__ import annotations

import secrets
import uuid
from datetime import date
from typing import Any

from api.auth.passwords import hash_password_off_loop, new_client_secret
from api.auth.permissions import Action
from api.auth.principals import PrincipalStore
from api.auth.scope import Scope
from api.db.versioned import VersionedCache
from api.domain import clock
from api.domain.audit.repository import Access, AuditLog
from api.domain.catalogue import OrganisationKind
from api.domain.holdings import Holder, HoldingSource, order_holders
from api.domain.organisations.repository import ApiClientStore, OrganisationStore
from api.domain.organisations.rules import PlatformFirstAdminOnly
from api.domain.organisations.schemas import (
    ApiClientCreate,
    ApiClientCreated,
    ApiClientRead,
    CompetentRead,
    HolderRead,
    HoldingRead,
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
from api.domain.text import fold
from api.http.schemas import Page, as_text, decode_keyset, encode_cursor
from api.problems import (
    FieldError,
    Forbidden,
    NotFound,
    PreconditionFailed,
    ValidationFailed,
)

#: the organisation and e-mail ``/v1/me`` names, by principal and organisation: both are
#: covered by the access version (organisation and app_user changes replace it)
_WHO: VersionedCache[tuple[OrganisationRef, str | None]] = VersionedCache()

_K = OrganisationKind
_SERVICE_AREA_KINDS = {_K.ORGANISME_SOCIAL, _K.ASSOCIATION, _K.ETAT}


def organisation_read(row: Any) -> OrganisationRead:
    return OrganisationRead(
        id=row.id,
        name=row.name,
        kind=row.kind,
        siret=row.siret,
        commune=row.commune_code,
        epci=row.epci_siren,
        departement=row.departement_code,
        service_area=ServiceArea(
            communes=row.service_area_communes, departements=row.service_area_departements
        ),
        email=row.email,
        phone=row.phone,
        address=row.address,
        territory=TerritorySummary(communes_count=row.communes_count),
    )


async def _territory(store: OrganisationStore, body: OrganisationCreate) -> list[str]:
    """The communes an organisation of this kind covers; 422 naming what is missing/unknown."""
    kind = body.kind
    required = {
        _K.COMMUNE: "commune",
        _K.CCAS: "commune",
        _K.EPCI: "epci",
        _K.CIAS: "epci",
        _K.DEPARTEMENT: "departement",
    }.get(kind)
    if required and getattr(body, required) is None:
        raise ValidationFailed(
            detail=f"A {kind} needs its {required}.",
            errors=[FieldError(f"/{required}", f"Required for a {kind}.")],
        )
    if kind in (_K.COMMUNE, _K.CCAS):
        assert body.commune is not None
        communes = [body.commune]
        pointer = "/commune"
    elif kind in (_K.EPCI, _K.CIAS):
        communes = await store.communes_where(epci=body.epci)
        pointer = "/epci"
    elif kind == _K.DEPARTEMENT:
        assert body.departement is not None
        communes = await store.communes_where(departements=[body.departement])
        pointer = "/departement"
    elif kind in _SERVICE_AREA_KINDS:
        area = body.service_area
        if area is None or not (area.communes or area.departements):
            raise ValidationFailed(
                detail=f"A {kind} declares the communes or départements it serves.",
                errors=[FieldError("/service_area", "Required: communes or departements.")],
            )
        known = await store.existing_communes(area.communes)
        unknown = [
            FieldError(f"/service_area/communes/{i}", f"Unknown commune {code}.")
            for i, code in enumerate(area.communes)
            if code not in known
        ]
        if unknown:
            raise ValidationFailed(detail=unknown[0].detail, errors=unknown)
        known_departements = await store.existing_departements(area.departements)
        unknown = [
            FieldError(f"/service_area/departements/{i}", f"Unknown département {code}.")
            for i, code in enumerate(area.departements)
            if code not in known_departements
        ]
        if unknown:
            raise ValidationFailed(detail=unknown[0].detail, errors=unknown)
        by_departement = await store.communes_where(departements=area.departements)
        return sorted(set(area.communes) | set(by_departement))
    else:  # the platform operator covers no territory
        return []
    if not communes or (
        kind in (_K.COMMUNE, _K.CCAS) and not await store.existing_communes(communes)
    ):
        raise ValidationFailed(
            detail=f"No current commune matches {pointer[1:]}.",
            errors=[FieldError(pointer, "Unknown code.")],
        )
    return communes


async def create_organisation(
    scope: Scope, store: OrganisationStore, body: OrganisationCreate
) -> OrganisationRead:
    scope.require(Action.MANAGE_ORGANISATIONS)
    communes = await _territory(store, body)
    now = clock.now()
    area = body.service_area or ServiceArea()
    row = await store.insert(
        {
            "id": uuid.uuid4(),
            "name": body.name,
            "search_name": fold(body.name),
            "kind": body.kind,
            "siret": body.siret,
            "commune_code": body.commune if body.kind in (_K.COMMUNE, _K.CCAS) else None,
            "epci_siren": body.epci if body.kind in (_K.EPCI, _K.CIAS) else None,
            "departement_code": body.departement if body.kind == _K.DEPARTEMENT else None,
            "service_area_communes": area.communes if body.kind in _SERVICE_AREA_KINDS else [],
            "service_area_departements": area.departements
            if body.kind in _SERVICE_AREA_KINDS
            else [],
            "email": body.email,
            "phone": body.phone,
            "address": body.address,
            "created_at": now,
            "updated_at": now,
        },
        communes,
    )
    return await get_organisation(store, row.id)


async def get_organisation(
    store: OrganisationStore, organisation_id: uuid.UUID
) -> OrganisationRead:
    return (await read_organisation(store, organisation_id))[0]


async def read_organisation(
    store: OrganisationStore, organisation_id: uuid.UUID
) -> tuple[OrganisationRead, str]:
    """The organisation and its ETag."""
    row = await store.get(organisation_id)
    if row is None:
        raise NotFound(detail="No such organisation.")
    return organisation_read(row), organisation_etag(row.version)


async def list_organisations(
    store: OrganisationStore,
    *,
    kind: OrganisationKind | None,
    commune: str | None,
    q: str | None,
    cursor: str | None,
    limit: int,
) -> Page[OrganisationRead]:
    rows = await store.directory(
        kind=kind,
        commune=commune,
        folded_query=fold(q) if q and fold(q) else None,
        after=decode_keyset(cursor, as_text, as_text),
        limit=limit,
    )
    page = rows[:limit]
    next_cursor = encode_cursor([page[-1].name, str(page[-1].id)]) if len(rows) > limit else None
    return Page[OrganisationRead](
        items=[organisation_read(r) for r in page], next_cursor=next_cursor
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
    if (
        await store.update(organisation_id, current.version, {**changes, "updated_at": clock.now()})
        is None
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
    return RetentionRead.model_validate(row), organisation_etag(row.version)


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
    if (
        await store.update(organisation_id, current.version, {**changes, "updated_at": clock.now()})
        is None
    ):
        raise PreconditionFailed(detail="The organisation changed since you read it.")
    await audit.record("organisation.retention_update", "organisation", str(organisation_id))
    return await read_retention(scope, store, organisation_id)


# members and API clients ----------------------------------------------------------------


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
    row = await clients.add(
        {
            "id": uuid.uuid4(),
            "organisation_id": organisation_id,
            "client_id": "gu_" + secrets.token_urlsafe(16),
            "name": body.name,
            "secret_hash": await hash_password_off_loop(secret),
            "scopes": sorted({str(s) for s in body.scopes}),
            "created_at": clock.now(),
        }
    )
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


# holdings and the directory ---------------------------------------------------------------


async def list_holdings(
    store: OrganisationStore,
    organisation_id: uuid.UUID,
    *,
    competence: str | None,
    commune: str | None,
    cursor: str | None,
    limit: int,
) -> Page[HoldingRead]:
    await get_organisation(store, organisation_id)
    rows = await store.holdings(
        organisation_id,
        competence=competence,
        commune=commune,
        on=clock.today(),
        after=decode_keyset(cursor, as_text, as_text, as_text),
        limit=limit,
    )
    page = rows[:limit]
    next_cursor = (
        encode_cursor([page[-1].competence, page[-1].commune, page[-1].source])
        if len(rows) > limit
        else None
    )
    return Page[HoldingRead](
        items=[HoldingRead.model_validate(r, from_attributes=True) for r in page],
        next_cursor=next_cursor,
    )


async def competent(
    store: OrganisationStore, competence: str, commune: str, on: date | None
) -> CompetentRead:
    """Who holds ``competence`` on ``commune``: delegates first, then legal holders."""
    if competence not in {r.code for r in await store.competences()}:
        raise ValidationFailed(
            detail=f"Unknown competence {competence!r}.",
            errors=[FieldError("/competence", "Unknown competence.", "query")],
        )
    if not await store.existing_communes([commune]):
        raise ValidationFailed(
            detail=f"Unknown commune {commune!r}.",
            errors=[FieldError("/commune", "Unknown commune.", "query")],
        )
    day = on or clock.today()
    rows = await store.competent(competence, commune, day)
    kinds = {r.id: r.kind for r in rows}
    holders = order_holders(
        Holder(
            organisation_id=r.id,
            name=r.name,
            source=HoldingSource(r.source),
            convention_id=r.convention_id,
        )
        for r in rows
    )
    return CompetentRead(
        competence=competence,
        commune=commune,
        on=day,
        holders=[
            HolderRead(
                organisation=OrganisationRef(
                    id=h.organisation_id, name=h.name, kind=kinds[h.organisation_id]
                ),
                source=h.source.value,
                convention_id=h.convention_id,
            )
            for h in holders
        ],
    )


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
