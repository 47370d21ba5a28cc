"""A person's record: creation with identity matching, reading and editing within the
caller's categories, the list of the people its organisation follows."""

from __future__ import annotations

import uuid
from typing import Any

from api.auth import access
from api.auth.permissions import Action
from api.db.tables import Beneficiary
from api.domain import clock
from api.domain.audit.repository import Access
from api.domain.catalogue import DataCategory
from api.domain.identity import check_birth_date, check_nir, name_match_keys, normalise_name
from api.domain.people.repository import PersonRecord
from api.domain.people.schemas import BeneficiaryCreate, BeneficiaryRead, BeneficiaryUpdate
from api.domain.people.service.context import (
    People,
    categories_of,
    etag,
    readable_record,
    visible_person,
)
from api.domain.people.service.discovery import discoverable, previews
from api.domain.people.visibility import FIELD_CATEGORIES
from api.http.schemas import Page, decode_keyset, encode_cursor
from api.problems import (
    FieldError,
    Forbidden,
    PossibleDuplicate,
    PreconditionFailed,
    ValidationFailed,
)


def folded_names(birth_name: str, usage_name: str | None, first_names: str) -> str:
    return " ".join(normalise_name(n) for n in (birth_name, usage_name or "", first_names) if n)


# creation ---------------------------------------------------------------------------------


async def _check_creation(ctx: People, body: BeneficiaryCreate) -> str | None:
    """Every field error of a creation at once (422), then the sensitive clearance (403);
    the NIR normalised."""
    errors: list[FieldError] = []
    nir = None
    try:
        nir = check_nir(body.nir) if body.nir else None
    except ValidationFailed as error:
        errors += error.errors
    try:
        check_birth_date(body.birth_date, clock.today())
    except ValidationFailed as error:
        errors += error.errors
    commune = body.commune
    if body.domiciliation_organisation_id and not commune:
        domiciliation = await ctx.orgs.get(body.domiciliation_organisation_id)
        if domiciliation is None:
            errors.append(FieldError("/domiciliation_organisation_id", "Unknown organisation."))
        else:
            commune = domiciliation.commune_code
    if not commune and not body.domiciliation_organisation_id:
        errors.append(
            FieldError("/commune", "A commune of residence or a domiciliation is required.")
        )
    elif body.commune and not await ctx.orgs.existing_communes([body.commune]):
        errors.append(FieldError("/commune", f"Unknown commune {body.commune}."))
    catalogue = {r.code: r for r in await ctx.orgs.competences()}
    competence = catalogue.get(body.competence)
    if competence is None:
        errors.append(FieldError("/competence", f"Unknown competence {body.competence!r}."))
    elif commune and not ctx.scope.holds(body.competence, commune):
        errors.append(
            FieldError("/competence", f"Your organisation does not hold {body.competence} there.")
        )
    if body.force_create and not body.justification:
        errors.append(
            FieldError("/justification", "Required to create despite a likely duplicate.")
        )
    if errors:
        raise ValidationFailed(detail=errors[0].detail, errors=errors)
    assert competence is not None and commune is not None
    if competence.sensitive and not ctx.scope.has_sensitive_clearance:
        raise Forbidden(detail="This competence needs the sensitive clearance.")
    return nir


async def _likely_duplicates(
    ctx: People, body: BeneficiaryCreate, nir_hash: str | None, keys: frozenset[str]
) -> list[Any]:
    """The people this one may be (409, unless forced with a justification and no NIR
    matches); the 409 names only people the caller could find with /search."""
    likely = await discoverable(ctx, nir_hash, body.birth_date, keys)
    same_nir = any(r.nir_match for r in likely)
    if likely and (same_nir or not body.force_create):
        raise PossibleDuplicate(
            detail="A person with this NIR is already known: request access to that record."
            if same_nir
            else "This person may already be known: request access, or force the creation "
            "with a justification.",
            extra={"candidates": [p.model_dump(mode="json") for p in await previews(ctx, likely)]},
        )
    return likely


async def create(ctx: People, body: BeneficiaryCreate) -> tuple[BeneficiaryRead, str]:
    scope = ctx.scope
    scope.require(Action.CREATE_PEOPLE)
    nir = await _check_creation(ctx, body)
    keys = name_match_keys(body.birth_name, body.usage_name, body.first_names)
    nir_hash = ctx.nir.lookup_hash(nir) if nir else None
    likely = await _likely_duplicates(ctx, body, nir_hash, keys)

    now = clock.now()
    person_id = uuid.uuid4()
    await ctx.store.insert(
        {
            "id": person_id,
            "birth_name": body.birth_name,
            "usage_name": body.usage_name,
            "first_names": body.first_names,
            "birth_date": body.birth_date,
            "sex": body.sex,
            "birth_place": body.birth_place,
            "nir_cipher": ctx.nir.encrypt(nir) if nir else None,
            "nir_hash": nir_hash,
            "nir_missing_reason": None if nir else body.nir_missing_reason,
            "commune_code": body.commune,
            "domiciliation_organisation_id": body.domiciliation_organisation_id,
            "address": body.address.model_dump() if body.address else None,
            "phone": body.phone,
            "email": body.email,
            "situation": body.situation,
            "match_keys": sorted(keys),
            "folded_names": folded_names(body.birth_name, body.usage_name, body.first_names),
            "last_contact_at": now,
            "created_by_organisation_id": scope.organisation_id,
            "created_at": now,
            "updated_at": now,
        }
    )
    await ctx.store.join(
        {
            "id": uuid.uuid4(),
            "beneficiary_id": person_id,
            "organisation_id": scope.organisation_id,
            "competence": body.competence,
            "team_role": "referent",
            "source": "creation",
            "started_at": now,
        }
    )
    await ctx.audit.record(
        "beneficiary.create", "beneficiary", str(person_id), beneficiary_id=person_id
    )
    if likely:
        await ctx.audit.record(
            "beneficiary.force_create",
            "beneficiary",
            str(person_id),
            beneficiary_id=person_id,
            purpose=body.justification,
        )
    return await read(ctx, person_id, audit=False)


# reading and editing ----------------------------------------------------------------------


def shape(
    ctx: People, row: Beneficiary | PersonRecord, categories: frozenset[DataCategory]
) -> BeneficiaryRead:
    """The record as the caller may read it: fields outside its categories are absent."""
    values: dict[str, Any] = {
        "birth_name": row.birth_name,
        "usage_name": row.usage_name,
        "first_names": row.first_names,
        "birth_date": row.birth_date,
        "sex": row.sex,
        "birth_place": row.birth_place,
        "nir": ctx.nir.decrypt(row.nir_cipher) if row.nir_cipher else None,
        "nir_missing_reason": row.nir_missing_reason,
        "commune": row.commune_code,
        "domiciliation_organisation_id": row.domiciliation_organisation_id,
        "address": row.address,
        "phone": row.phone,
        "email": row.email,
        "situation": row.situation,
        "last_contact_at": row.last_contact_at,
    }
    shown = {k: v for k, v in values.items() if FIELD_CATEGORIES[k] in categories}
    return BeneficiaryRead(id=row.id, categories=sorted(c.value for c in categories), **shown)


async def read(
    ctx: People, person_id: uuid.UUID, *, audit: bool = True
) -> tuple[BeneficiaryRead, str]:
    if not audit:
        row, categories = await visible_person(ctx, person_id)
        return shape(ctx, row, categories), etag(row.version)
    # the record, what the access rule lets the caller read of it and the audit entry of
    # the reading in one statement (written only when something is read)
    entry = ctx.audit.entry(
        Access("beneficiary.read", "beneficiary", str(person_id), beneficiary_id=person_id)
    )
    found = await ctx.store.read_recorded(person_id, access.role_categories(ctx.scope), entry)
    record, readable = await readable_record(ctx, person_id, found)
    return shape(ctx, record, readable), etag(record.version)


async def _changed_values(ctx: People, row: Beneficiary, changes: dict[str, Any]) -> dict[str, Any]:
    """The columns an update writes, its fields checked (422 with every error at once)."""
    errors: list[FieldError] = []
    values: dict[str, Any] = {}
    for name, value in changes.items():
        if name == "nir":
            try:
                nir = check_nir(value) if value else None
            except ValidationFailed as error:
                errors += error.errors
                continue
            values.update(
                nir_cipher=ctx.nir.encrypt(nir) if nir else None,
                nir_hash=ctx.nir.lookup_hash(nir) if nir else None,
            )
        elif name == "birth_date":
            try:
                check_birth_date(value, clock.today())
            except ValidationFailed as error:
                errors += error.errors
            values[name] = value
        elif name == "commune":
            if value and not await ctx.orgs.existing_communes([value]):
                errors.append(FieldError("/commune", f"Unknown commune {value}."))
            values["commune_code"] = value
        else:
            values[name] = value
    if errors:
        raise ValidationFailed(detail=errors[0].detail, errors=errors)
    if {"birth_name", "usage_name", "first_names"} & changes.keys():
        birth = values.get("birth_name", row.birth_name)
        usage = values.get("usage_name", row.usage_name)
        first = values.get("first_names", row.first_names)
        values["match_keys"] = sorted(name_match_keys(birth, usage, first))
        values["folded_names"] = folded_names(birth, usage, first)
    return values


async def update(
    ctx: People, person_id: uuid.UUID, body: BeneficiaryUpdate, if_match: str
) -> tuple[BeneficiaryRead, str]:
    row, categories = await visible_person(ctx, person_id)
    changes = body.model_dump(exclude_unset=True)
    forbidden = [
        FieldError(f"/{name}", f"Your access does not cover {FIELD_CATEGORIES[name].value}.")
        for name in changes
        if FIELD_CATEGORIES[name] not in categories
    ]
    if forbidden:
        raise Forbidden(detail="You may not change these fields.", errors=forbidden)
    if if_match != etag(row.version):
        raise PreconditionFailed(detail="The person changed since you read it.")
    values = await _changed_values(ctx, row, changes)
    values["updated_at"] = clock.now()
    if not await ctx.store.update(person_id, row.version, values):
        raise PreconditionFailed(detail="The person changed since you read it.")
    await ctx.audit.record(
        "beneficiary.update", "beneficiary", str(person_id), beneficiary_id=person_id
    )
    return await read(ctx, person_id, audit=False)


async def attached(
    ctx: People, *, competence: str | None, commune: str | None, cursor: str | None, limit: int
) -> Page[BeneficiaryRead]:
    position = decode_keyset(cursor, uuid.UUID)
    after = position[0] if position else None
    rows = await ctx.store.attached_page(
        competence=competence, commune=commune, after=after, limit=limit
    )
    page = rows[:limit]
    visible = await categories_of(ctx, page) if page else {}
    summary = {DataCategory.IDENTITY, DataCategory.CONTACT}
    # attached, but with no competence held there any more: left out
    items = [shape(ctx, r, visible[r.id] & summary) for r in page if visible[r.id]]
    # one entry per person listed: the list shows in each person's access log
    await ctx.audit.record_many(
        [Access("beneficiary.list", "beneficiary", str(p.id), beneficiary_id=p.id) for p in items]
    )
    next_cursor = encode_cursor([str(page[-1].id)]) if len(rows) > limit else None
    return Page[BeneficiaryRead](items=items, next_cursor=next_cursor)
