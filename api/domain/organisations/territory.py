"""The territory an organisation covers, derived from its kind: its commune, its EPCI's
communes, its département's, or the service area it declares."""

from __future__ import annotations

from api.domain.catalogue import OrganisationKind
from api.domain.organisations.repository import OrganisationStore
from api.domain.organisations.schemas import OrganisationCreate
from api.problems import FieldError, ValidationFailed

_K = OrganisationKind
#: kinds that declare the communes or départements they serve instead of deriving them
SERVICE_AREA_KINDS = frozenset({_K.ORGANISME_SOCIAL, _K.ASSOCIATION, _K.ETAT})


async def territory_of(store: OrganisationStore, body: OrganisationCreate) -> list[str]:
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
    elif kind in SERVICE_AREA_KINDS:
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
