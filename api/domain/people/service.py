"""People: creation with identity matching, discovery by preview, reading and editing within
the caller's categories, care teams. Every read and write of personal data is audited in the
same transaction."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from api.auth import access
from api.auth.access_queries import AccessStore
from api.auth.permissions import Action
from api.auth.scope import Scope
from api.domain import clock
from api.domain.audit.repository import Access, AuditLog
from api.domain.budget import remaining_income_per_person_per_day
from api.domain.catalogue import DataCategory
from api.domain.identity import check_birth_date, check_nir, name_match_keys, normalise_name
from api.domain.organisations.repository import OrganisationStore
from api.domain.people.nir import NirCipher
from api.domain.people.problems import merged
from api.domain.people.repository import PeopleStore, locate_person
from api.domain.people.schemas import (
    BeneficiaryCreate,
    BeneficiaryRead,
    BeneficiaryUpdate,
    Budget,
    BudgetLineIn,
    BudgetRead,
    CareTeamJoin,
    CareTeamMemberRead,
    CommuneRef,
    Follower,
    Household,
    HouseholdMemberIn,
    HouseholdRead,
    NoteCreate,
    NoteRead,
    Preview,
    PreviewList,
)
from api.domain.people.visibility import FIELD_CATEGORIES
from api.http.schemas import Page, decode_keyset, encode_cursor
from api.problems import (
    FieldError,
    Forbidden,
    NotFound,
    PossibleDuplicate,
    PreconditionFailed,
    ValidationFailed,
)

MAX_PREVIEWS = 10  # person_previews answers ten at most (migration 0016)


@dataclass(frozen=True)
class People:
    """What the use cases need, built by the router for one request."""

    scope: Scope
    store: PeopleStore
    orgs: OrganisationStore
    audit: AuditLog
    nir: NirCipher


def etag(version: int) -> str:
    return f'"{version}"'


def folded_names(birth_name: str, usage_name: str | None, first_names: str) -> str:
    return " ".join(normalise_name(n) for n in (birth_name, usage_name or "", first_names) if n)


# discovery --------------------------------------------------------------------------------


async def _previews(ctx: People, rows: list[Any]) -> list[Preview]:
    ids = [r.id for r in rows]
    followers = await ctx.store.followers(ids) if ids else []
    communes = await ctx.store.commune_names([r.commune_code for r in rows if r.commune_code])
    previews = []
    for r in rows:
        mine = [f for f in followers if f.beneficiary_id == r.id]
        previews.append(
            Preview(
                id=r.id,
                last_name=r.usage_name or r.birth_name,
                first_names=r.first_names,
                birth_year=r.birth_date.year,
                commune=CommuneRef(code=r.commune_code, name=communes[r.commune_code])
                if r.commune_code
                else None,
                followed_by=[
                    Follower(
                        organisation_id=f.organisation_id,
                        organisation_name=f.organisation_name,
                        competence=f.competence,
                    )
                    for f in mine
                ],
                attached=any(f.organisation_id == ctx.scope.organisation_id for f in mine),
            )
        )
    return previews


async def discoverable(
    ctx: People, nir_hash: str | None, birth_date: Any, keys: frozenset[str]
) -> list[Any]:
    """The people the caller may discover (domain.md §6), the rule applied by the database:
    living where it holds ``accueil``, with this NIR or born that day with the same names."""
    return await AccessStore(ctx.store.session).previews(nir_hash, birth_date, keys)


async def preview_search(
    ctx: People, *, birth_date: Any, last_name: str | None, first_name: str | None, nir: str | None
) -> PreviewList:
    """Exact birth date and names, or a NIR: at most ten previews of people living where the
    caller holds ``accueil``. Typing an identifier never grants access."""
    ctx.scope.require(Action.PREVIEW_SEARCH)
    nir_hash = ctx.nir.lookup_hash(check_nir(nir)) if nir else None
    if nir_hash is None and not (birth_date and last_name and first_name):
        raise ValidationFailed(
            detail="Search with birth_date, last_name and first_name, or with nir.",
            errors=[FieldError("/birth_date", "Required with the names.", "query")],
        )
    if nir_hash:
        rows = [r for r in await discoverable(ctx, nir_hash, None, frozenset()) if r.nir_match]
    else:
        keys = name_match_keys(last_name or "", None, first_name or "")
        rows = await discoverable(ctx, None, birth_date, keys)
    await ctx.audit.record("beneficiary.preview_search", "beneficiary", None)
    return PreviewList(items=await _previews(ctx, rows[:MAX_PREVIEWS]))


# creation ---------------------------------------------------------------------------------


async def create(ctx: People, body: BeneficiaryCreate) -> tuple[BeneficiaryRead, str]:
    scope = ctx.scope
    scope.require(Action.CREATE_PEOPLE)
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
    elif commune and not scope.holds(body.competence, commune):
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
    if competence.sensitive and not scope.has_sensitive_clearance:
        raise Forbidden(detail="This competence needs the sensitive clearance.")

    keys = name_match_keys(body.birth_name, body.usage_name, body.first_names)
    folded = folded_names(body.birth_name, body.usage_name, body.first_names)
    nir_hash = ctx.nir.lookup_hash(nir) if nir else None
    # the 409 names only people the caller could find with /search: no wider discovery
    likely = await discoverable(ctx, nir_hash, body.birth_date, keys)
    same_nir = any(r.nir_match for r in likely)
    if likely and (same_nir or not body.force_create):
        raise PossibleDuplicate(
            detail="A person with this NIR is already known: request access to that record."
            if same_nir
            else "This person may already be known: request access, or force the creation "
            "with a justification.",
            extra={"candidates": [p.model_dump(mode="json") for p in await _previews(ctx, likely)]},
        )

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
            "folded_names": folded,
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


async def _categories_of(ctx: People, rows: list[Any]) -> dict[uuid.UUID, frozenset[DataCategory]]:
    """What the caller may read of each person, asked of the access rule in one query."""
    return await access.person_categories(ctx.store.session, ctx.scope, [r.id for r in rows])


async def visible_person(ctx: People, person_id: uuid.UUID) -> tuple[Any, frozenset[DataCategory]]:
    """The record and the categories the caller may read, or 404 when it may read nothing
    (301 to the surviving record when this one was merged into a person it may read)."""
    row = await ctx.store.get(person_id)
    categories = (await _categories_of(ctx, [row]))[row.id] if row is not None else frozenset()
    if not categories:
        await _redirect_if_merged(ctx, person_id, followed_is_enough=False)
        raise NotFound(detail="No such person.")
    return row, categories


async def followed(ctx: People, person_id: uuid.UUID, action: Action) -> Any:
    """The record when the caller's organisation follows the person, whatever the caller's
    role may read of it (the DPO's ``action``: access log, export); else 404, or 301 when
    it was merged into a person the caller may read or may take ``action`` on."""
    row = await ctx.store.get(person_id)
    if row is None:
        await _redirect_if_merged(ctx, person_id, followed_is_enough=ctx.scope.permits(action))
        raise NotFound(detail="No such person.")
    return row


async def _redirect_if_merged(
    ctx: People, person_id: uuid.UUID, *, followed_is_enough: bool
) -> None:
    """A merged record answers with its survivor, to a caller that may read the survivor."""
    survivor = await ctx.store.merged_into(person_id)
    if survivor is None:
        return
    row = await ctx.store.get(survivor)
    if row is None:
        return
    if followed_is_enough or (await _categories_of(ctx, [row]))[row.id]:
        raise merged(person_id, survivor)


def _shape(ctx: People, row: Any, categories: frozenset[DataCategory]) -> BeneficiaryRead:
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
    row, categories = await visible_person(ctx, person_id)
    if audit:
        await ctx.audit.record(
            "beneficiary.read", "beneficiary", str(person_id), beneficiary_id=person_id
        )
    return _shape(ctx, row, categories), etag(row.version)


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
    visible = await _categories_of(ctx, page) if page else {}
    summary = {DataCategory.IDENTITY, DataCategory.CONTACT}
    # attached, but with no competence held there any more: left out
    items = [_shape(ctx, r, visible[r.id] & summary) for r in page if visible[r.id]]
    # one entry per person listed: the list shows in each person's access log
    await ctx.audit.record_many(
        [Access("beneficiary.list", "beneficiary", str(p.id), beneficiary_id=p.id) for p in items]
    )
    next_cursor = encode_cursor([str(page[-1].id)]) if len(rows) > limit else None
    return Page[BeneficiaryRead](items=items, next_cursor=next_cursor)


# care team --------------------------------------------------------------------------------


async def care_team(ctx: People, person_id: uuid.UUID) -> list[CareTeamMemberRead]:
    await visible_person(ctx, person_id)
    await ctx.audit.record(
        "care_team.read", "beneficiary", str(person_id), beneficiary_id=person_id
    )
    sensitive = await ctx.orgs.sensitive_competences()
    # a sensitive follow-up (ase, violences) shows only to the cleared users of the
    # organisation holding it: that someone is followed for it is itself sensitive (§4)
    return [
        CareTeamMemberRead.model_validate(r, from_attributes=True)
        for r in await ctx.store.team(person_id)
        if r.competence not in sensitive
        or (r.organisation_id == ctx.scope.organisation_id and ctx.scope.has_sensitive_clearance)
    ]


async def break_glass(
    ctx: People, person_id: uuid.UUID, body: CareTeamJoin
) -> list[CareTeamMemberRead]:
    """A legal holder of the competence on the person's commune joins directly, with a
    written justification shown in the person's access log. Anyone else: 404."""
    scope = ctx.scope
    exists, commune = await locate_person(ctx.store.session, person_id)
    holding = scope.holding(body.competence, commune) if exists and commune else None
    if holding is None or holding.source != "law":
        raise NotFound(detail="No such person.")
    scope.require(Action.ANSWER_REFERRALS)
    sensitive = await ctx.orgs.sensitive_competences()
    if body.competence in sensitive and not scope.has_sensitive_clearance:
        raise Forbidden(detail="This competence needs the sensitive clearance.")
    await ctx.store.join(
        {
            "id": uuid.uuid4(),
            "beneficiary_id": person_id,
            "organisation_id": scope.organisation_id,
            "competence": body.competence,
            "team_role": "member",
            "source": "break_glass",
            "justification": body.justification,
            "started_at": clock.now(),
        }
    )
    await ctx.audit.record(
        "care_team.break_glass",
        "beneficiary",
        str(person_id),
        beneficiary_id=person_id,
        purpose=body.justification,
    )
    return await care_team(ctx, person_id)


async def leave(ctx: People, person_id: uuid.UUID, membership_id: uuid.UUID, reason: str) -> None:
    await visible_person(ctx, person_id)
    left = await ctx.store.leave(membership_id, clock.now(), reason)
    if left is None or left.beneficiary_id != person_id:
        raise NotFound(detail="No such membership of your organisation.")
    await ctx.audit.record(
        "care_team.leave", "beneficiary", str(person_id), beneficiary_id=person_id, purpose=reason
    )


async def require_access_log(ctx: People, person_id: uuid.UUID, purpose: str | None) -> None:
    """The access log is for the care team and for the DPO of an organisation in it, who
    states a purpose (audited); anyone else: 404."""
    row = await followed(ctx, person_id, Action.READ_ACCESS_LOG)
    if (await _categories_of(ctx, [row]))[row.id]:
        return
    if not ctx.scope.permits(Action.READ_ACCESS_LOG):
        raise NotFound(detail="No such person.")
    if not purpose:
        raise ValidationFailed(
            detail="State the purpose of this reading.",
            errors=[FieldError("/purpose", "Required for a DPO reading.", "query")],
        )
    await ctx.audit.record(
        "access_log.read", "beneficiary", str(person_id), beneficiary_id=person_id, purpose=purpose
    )


# household, budget, notes -------------------------------------------------------------


def _require_category(categories: frozenset[DataCategory], category: DataCategory) -> None:
    if category not in categories:
        raise Forbidden(detail=f"Your access to this person does not cover {category.value}.")


async def household(ctx: People, person_id: uuid.UUID) -> HouseholdRead:
    _, categories = await visible_person(ctx, person_id)
    _require_category(categories, DataCategory.HOUSEHOLD)
    await ctx.audit.record(
        "household.read", "beneficiary", str(person_id), beneficiary_id=person_id
    )
    return HouseholdRead(
        members=[
            HouseholdMemberIn(
                beneficiary_id=m.member_beneficiary_id,
                first_name=m.first_name,
                birth_date=m.birth_date,
                relation=m.relation,
            )
            for m in await ctx.store.household(person_id)
        ]
    )


async def replace_household(ctx: People, person_id: uuid.UUID, body: Household) -> HouseholdRead:
    _, categories = await visible_person(ctx, person_id)
    _require_category(categories, DataCategory.HOUSEHOLD)
    errors = [
        FieldError(f"/members/{i}", "Name a beneficiary_id, or a first_name and birth_date.")
        for i, m in enumerate(body.members)
        if m.beneficiary_id is None and not (m.first_name and m.birth_date)
    ]
    linked = [m.beneficiary_id for m in body.members if m.beneficiary_id is not None]
    readable = await access.person_categories(ctx.store.session, ctx.scope, linked)
    # unknown and not readable answer alike: a household link is no existence oracle
    errors += [
        FieldError(f"/members/{i}/beneficiary_id", "No such person among those you follow.")
        for i, m in enumerate(body.members)
        if m.beneficiary_id is not None and not readable.get(m.beneficiary_id)
    ]
    if errors:
        raise ValidationFailed(detail=errors[0].detail, errors=errors)
    await ctx.store.replace_household(
        person_id,
        [
            {
                "id": uuid.uuid4(),
                "beneficiary_id": person_id,
                "member_beneficiary_id": m.beneficiary_id,
                "first_name": m.first_name,
                "birth_date": m.birth_date,
                "relation": m.relation,
            }
            for m in body.members
        ],
    )
    await ctx.audit.record(
        "household.update", "beneficiary", str(person_id), beneficiary_id=person_id
    )
    return await household(ctx, person_id)


async def budget(ctx: People, person_id: uuid.UUID, *, audit: bool = True) -> BudgetRead:
    _, categories = await visible_person(ctx, person_id)
    _require_category(categories, DataCategory.RESOURCES)
    lines = await ctx.store.budget(person_id)
    resources = [
        BudgetLineIn(type=line.type, monthly_amount=line.monthly_amount)
        for line in lines
        if line.kind == "resource"
    ]
    charges = [
        BudgetLineIn(type=line.type, monthly_amount=line.monthly_amount)
        for line in lines
        if line.kind == "charge"
    ]
    # the person plus the members of their household
    size = 1 + sum(1 for m in await ctx.store.household(person_id) if m.relation != "demandeur")
    if audit:
        await ctx.audit.record(
            "budget.read", "beneficiary", str(person_id), beneficiary_id=person_id
        )
    return BudgetRead(
        resources=resources,
        charges=charges,
        household_size=size,
        remaining_income_per_person_per_day=remaining_income_per_person_per_day(
            [r.monthly_amount for r in resources], [c.monthly_amount for c in charges], size
        ),
    )


async def replace_budget(ctx: People, person_id: uuid.UUID, body: Budget) -> BudgetRead:
    _, categories = await visible_person(ctx, person_id)
    _require_category(categories, DataCategory.RESOURCES)
    await ctx.store.replace_budget(
        person_id,
        [
            {
                "id": uuid.uuid4(),
                "beneficiary_id": person_id,
                "kind": kind,
                "type": line.type,
                "monthly_amount": line.monthly_amount,
            }
            for kind, lines in (("resource", body.resources), ("charge", body.charges))
            for line in lines
        ],
    )
    await ctx.audit.record("budget.update", "beneficiary", str(person_id), beneficiary_id=person_id)
    return await budget(ctx, person_id, audit=False)


async def note_competences(ctx: People, person_id: uuid.UUID) -> list[str]:
    """Competences whose membership grants the caller the notes of the person now."""
    found = (await access.grants(ctx.store.session, ctx.scope, [person_id]))[person_id]
    return access.competences_granting(found, DataCategory.NOTES)


async def notes(ctx: People, person_id: uuid.UUID) -> list[NoteRead]:
    _, categories = await visible_person(ctx, person_id)
    _require_category(categories, DataCategory.NOTES)
    competences = await note_competences(ctx, person_id)
    await ctx.audit.record("notes.read", "beneficiary", str(person_id), beneficiary_id=person_id)
    return [
        NoteRead.model_validate(n, from_attributes=True)
        for n in await ctx.store.notes(person_id, competences)
    ]


async def add_note(ctx: People, person_id: uuid.UUID, body: NoteCreate) -> NoteRead:
    _, categories = await visible_person(ctx, person_id)
    _require_category(categories, DataCategory.NOTES)
    if body.competence not in await note_competences(ctx, person_id):
        raise ValidationFailed(
            detail="You follow this person for other competences.",
            errors=[FieldError("/competence", "Not a competence you follow this person for.")],
        )
    note_id = uuid.uuid4()
    await ctx.store.add_note(
        {
            "id": note_id,
            "beneficiary_id": person_id,
            "organisation_id": ctx.scope.organisation_id,
            "author_user_id": ctx.scope.user_id,
            "competence": body.competence,
            "visibility": body.visibility,
            "body": body.body,
            "created_at": clock.now(),
        }
    )
    await ctx.audit.record("note.create", "note", str(note_id), beneficiary_id=person_id)
    created = [n for n in await ctx.store.notes(person_id, [body.competence]) if n.id == note_id]
    return NoteRead.model_validate(created[0], from_attributes=True)
