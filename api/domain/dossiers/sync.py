"""Batch synchronisation of legal-aid dossiers with a partner's information system (issue 6,
domain.md §9), for API clients with ``dossiers:sync``.

Contract:

* up to 1,000 items, each upserted by its ``external_ref`` among the references the
  caller's organisation recorded (``dossier_id`` links an existing dossier, e.g. one a CCAS
  instructs, to the reference the first time);
* a per-item report: ``created``, ``updated``, ``unchanged``, ``conflict`` (a field the item
  carries changed after its ``source_updated_at``), ``error`` (a problem document with JSON
  pointers into the batch, ``/items/<i>/…``). One bad item never fails the others, and an
  item that is not applied writes nothing at all;
* an unchanged item writes nothing: no row, no event, no audit entry, no change announced,
  no lock taken; the same batch twice reports ``unchanged`` the second time;
* the person of a new dossier is found by ``id``, by NIR (anywhere: a NIR is never
  duplicated), or by the same names and birth date on the communes where the caller holds
  the prestation; only an unambiguous match is taken (similar names only, or several
  people, are a ``possible-duplicate`` error naming the candidates' ids: resend with
  ``beneficiary.id``). Nobody matching: the person is created, the caller joining the care
  team for the prestation (source ``sync``); a matched person the caller does not follow
  yet is joined the same way when it holds the prestation there by law (a legal holder's
  direct join, audited like one);
* field ownership and the lifecycle as in :mod:`api.domain.dossiers.rules`.

Cost: the batch is read in a handful of statements (references, dossiers, identity matching,
memberships, legal holders), the rows to update are locked in id order and re-checked, and
everything is written with one statement per table inside a savepoint. Should that fail (a
reference taken meanwhile by a concurrent batch…), the batch is written again unit by unit,
each in its own savepoint, so only the units that cannot be written are reported as errors.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError

from api.auth.permissions import Action
from api.domain import clock
from api.domain.audit.repository import Access
from api.domain.catalogue import LEGAL_AID_PRESTATIONS
from api.domain.dossiers.repository import SYNCED_COLUMNS
from api.domain.dossiers.rules import (
    DecisionValues,
    DossierStatus,
    Incoming,
    Plan,
    Stored,
    SyncOutcome,
    plan_create,
    plan_update,
    sides_of,
)
from api.domain.dossiers.schemas import SyncBatch, SyncItem, SyncReport, SyncResult
from api.domain.dossiers.service import (
    Dossiers,
    actor,
    audience_of,
    decision_of,
    join_decider,
    visible_ids,
)
from api.domain.identity import (
    check_birth_date,
    check_nir,
    name_match_keys,
    trigram_similarity,
)
from api.domain.people.service import folded_names
from api.problems import (
    Conflict,
    DomainError,
    FieldError,
    Forbidden,
    NotFound,
    PossibleDuplicate,
    ValidationFailed,
    problem_body,
)

#: names this similar (pg_trgm semantics) with the same birth date make a likely duplicate
SIMILAR_NAMES = 0.5

log = logging.getLogger(__name__)

#: how far ahead of our clock a source's clock may be
CLOCK_TOLERANCE = timedelta(minutes=5)
SYNC_PURPOSE = "legal-aid dossier synchronisation"


@dataclass
class _Entry:
    index: int
    item: SyncItem | None = None
    outcome: SyncOutcome | None = None
    problem: DomainError | None = None
    dossier_id: uuid.UUID | None = None
    #: the stored dossier (existing) and whether its reference must be recorded
    row: Any = None
    link: bool = False
    plan: Plan | None = None
    # new dossiers
    person_id: uuid.UUID | None = None
    commune: str | None = None
    deciding_id: uuid.UUID | None = None
    #: the batch creates the person / the caller joins their care team for the prestation
    new_person: bool = False
    join: bool = False

    @property
    def pointer(self) -> str:
        return f"/items/{self.index}"

    @property
    def open(self) -> bool:
        return self.outcome is None

    def fail(self, problem: DomainError, outcome: SyncOutcome = SyncOutcome.ERROR) -> None:
        self.outcome, self.problem = outcome, problem


@dataclass
class _Unit:
    """Items written together: those sharing a person the batch creates or joins."""

    entries: list[_Entry] = field(default_factory=list)
    people: list[dict[str, Any]] = field(default_factory=list)
    memberships: list[dict[str, Any]] = field(default_factory=list)
    dossiers: list[dict[str, Any]] = field(default_factory=list)
    refs: list[dict[str, Any]] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    deciders: list[_Decider] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    # (action, resource type, resource id, person, purpose)
    audits: list[tuple[str, str, uuid.UUID, uuid.UUID, str | None]] = field(default_factory=list)
    changes: list[dict[str, Any]] = field(default_factory=list)


def _invalid(errors: list[FieldError]) -> ValidationFailed:
    return ValidationFailed(detail=errors[0].detail, errors=errors)


def _pointer(prefix: str, loc: Sequence[Any]) -> str:
    escaped = [str(p).replace("~", "~0").replace("/", "~1") for p in loc]
    return "/".join([prefix, *escaped])


def _parse(entries: list[_Entry], raw: Sequence[Any]) -> None:
    for entry, value in zip(entries, raw, strict=True):
        try:
            entry.item = SyncItem.model_validate(value)
        except ValidationError as error:
            entry.fail(
                _invalid(
                    [
                        FieldError(
                            _pointer(entry.pointer, e["loc"]),
                            "Unknown field." if e["type"] == "extra_forbidden" else e["msg"],
                        )
                        for e in error.errors()
                    ]
                )
            )


def _incoming(item: SyncItem) -> Incoming:
    d = item.decision
    return Incoming(
        status=item.status,
        source_updated_at=item.source_updated_at,
        instruction=item.instruction.stored() if item.instruction is not None else None,
        decision=DecisionValues(
            decision=d.decision,
            amount=d.amount,
            start_on=d.start_on,
            end_on=d.end_on,
            reason=d.reason,
            decided_on=d.decided_on,
        )
        if d is not None
        else None,
    )


def _stored(row: Any) -> Stored:
    return Stored(
        status=DossierStatus(row.status),
        instruction=row.instruction,
        decision=decision_of(row),
        instruction_updated_at=row.instruction_updated_at,
        decision_updated_at=row.decision_updated_at,
        status_changed_at=row.status_changed_at,
    )


async def sync(ctx: Dossiers, batch: SyncBatch, *, instance: str) -> SyncReport:
    scope = ctx.scope
    scope.require(Action.SYNC_DOSSIERS)
    entries = [_Entry(i) for i in range(len(batch.items))]
    _parse(entries, batch.items)
    await _check_items(ctx, entries)
    await _plan_existing(ctx, entries)
    await _plan_new(ctx, entries)
    await _lock_and_replan(ctx, entries)
    await _write(ctx, _units(ctx, entries))
    return _report(ctx, entries, instance)


# checks of the items on their own -------------------------------------------------------


async def _check_items(ctx: Dossiers, entries: list[_Entry]) -> None:
    catalogue = {r.code for r in await ctx.orgs.competences()} & LEGAL_AID_PRESTATIONS
    latest = clock.now() + CLOCK_TOLERANCE
    communes = {
        e.item.beneficiary.commune for e in entries if e.item and e.item.beneficiary.commune
    }
    known_communes = await ctx.orgs.existing_communes(sorted(communes)) if communes else set()
    seen: set[tuple[str, str]] = set()
    for e in entries:
        if e.item is None:
            continue
        item, p = e.item, e.pointer
        errors = []
        if item.prestation not in catalogue:
            errors.append(FieldError(f"{p}/prestation", "Not a legal-aid prestation."))
        if item.source_updated_at > latest:
            errors.append(FieldError(f"{p}/source_updated_at", "In the future."))
        person = item.beneficiary
        if person.nir:
            try:
                check_nir(person.nir)
            except ValidationFailed as error:
                errors += [FieldError(f"{p}/beneficiary/nir", x.detail) for x in error.errors]
        if person.birth_date:
            try:
                check_birth_date(person.birth_date, clock.today())
            except ValidationFailed as error:
                errors += [
                    FieldError(f"{p}/beneficiary{x.pointer}", x.detail) for x in error.errors
                ]
        if person.commune and person.commune not in known_communes:
            errors.append(FieldError(f"{p}/beneficiary/commune", "Unknown commune."))
        key = (item.external_ref.system, item.external_ref.id)
        if key in seen:
            errors.append(FieldError(f"{p}/external_ref", "Listed twice in this batch."))
        seen.add(key)
        if errors:
            e.fail(_invalid(errors))


# dossiers the caller's references (or dossier_id) already name --------------------------


async def _plan_existing(ctx: Dossiers, entries: list[_Entry]) -> None:
    live = [e for e in entries if e.open and e.item]
    known = await ctx.store.own_refs(
        (e.item.external_ref.system, e.item.external_ref.id) for e in live if e.item
    )
    wanted: dict[int, uuid.UUID] = {}
    for e in live:
        assert e.item is not None
        found = known.get((e.item.external_ref.system, e.item.external_ref.id))
        named = e.item.dossier_id
        if named is not None and found is not None and named != found:
            e.fail(
                _invalid([FieldError(f"{e.pointer}/dossier_id", "The reference names another.")])
            )
        elif found is not None or named is not None:
            wanted[e.index] = found or named  # type: ignore[assignment]
            e.link = found is None
    rows = await ctx.store.get_many(wanted.values())
    visible = await visible_ids(ctx, rows)
    by_id = {r.id: r for r in rows if r.id in visible}
    taken: set[uuid.UUID] = set()
    for e in live:
        if e.index not in wanted or not e.open:
            continue
        if wanted[e.index] in taken:
            detail = "Another item of this batch names the same dossier."
            where = "dossier_id" if e.link else "external_ref"
            e.fail(_invalid([FieldError(f"{e.pointer}/{where}", detail)]))
            continue
        taken.add(wanted[e.index])
        _plan_one_existing(ctx, e, by_id.get(wanted[e.index]))


def _plan_one_existing(ctx: Dossiers, e: _Entry, row: Any) -> None:
    assert e.item is not None
    item, p = e.item, e.pointer
    if row is None:
        where = "dossier_id" if e.link else "external_ref"
        e.fail(NotFound(detail="No such dossier.", errors=[FieldError(f"{p}/{where}", "")]))
        return
    e.row, e.dossier_id = row, row.id
    errors = []
    if item.prestation != row.prestation:
        errors.append(FieldError(f"{p}/prestation", f"This dossier is for {row.prestation}."))
    if item.beneficiary.id is not None and item.beneficiary.id != row.beneficiary_id:
        errors.append(FieldError(f"{p}/beneficiary/id", "Not this dossier's person."))
    if errors:
        e.fail(_invalid(errors))
        return
    sides = sides_of(
        ctx.scope.organisation_id, row.instructing_organisation_id, row.deciding_organisation_id
    )
    if not sides:
        e.fail(Forbidden(detail="Only the instructing and deciding organisations sync it."))
        return
    e.plan = plan_update(_stored(row), _incoming(item), sides, p)
    if e.plan.outcome is SyncOutcome.UNCHANGED and e.link:
        e.plan = Plan(SyncOutcome.UPDATED)
    if e.plan.problem is not None:
        e.fail(e.plan.problem, e.plan.outcome)
    elif e.plan.outcome is SyncOutcome.UNCHANGED:
        e.outcome = SyncOutcome.UNCHANGED


# new dossiers: their person and their deciding organisation ---------------------------------


def _territory(ctx: Dossiers, prestations: set[str]) -> list[str]:
    """The communes where the caller holds any of these prestations."""
    scope = ctx.scope
    communes: set[str] = set()
    if prestations & scope.law_competences:
        communes |= scope.territory
    for grant in scope.grants:
        if prestations & grant.competences:
            communes |= grant.communes
    return sorted(communes)


@dataclass
class _Identity:
    nir_hash: str | None
    keys: frozenset[str]
    folded: str


def _identity(ctx: Dossiers, item: SyncItem) -> _Identity:
    person = item.beneficiary
    nir = check_nir(person.nir) if person.nir else None
    names = (person.birth_name or "", person.usage_name, person.first_names or "")
    return _Identity(
        nir_hash=ctx.people.nir.lookup_hash(nir) if nir else None,
        keys=name_match_keys(*names) if person.birth_name and person.first_names else frozenset(),
        folded=folded_names(*names),
    )


async def _plan_new(ctx: Dossiers, entries: list[_Entry]) -> None:
    scope = ctx.scope
    new = [e for e in entries if e.open and e.item and e.row is None]
    if not new:
        return
    identities = {e.index: _identity(ctx, e.item) for e in new if e.item}
    matches = await ctx.store.person_matches(
        [e.index for e in new],
        [e.item.beneficiary.id if e.item else None for e in new],
        [identities[e.index].nir_hash for e in new],
        [e.item.beneficiary.birth_date if e.item else None for e in new],
        _territory(ctx, {e.item.prestation for e in new if e.item}),
    )
    by_item: dict[int, list[Any]] = {}
    for m in matches:
        by_item.setdefault(m.idx, []).append(m)
    for e in new:
        _match(ctx, e, identities[e.index], by_item.get(e.index, []))

    # people created by the batch: one per NIR, or per birth date and names
    created: dict[Any, uuid.UUID] = {}
    for e in new:
        if not e.open or e.person_id is not None:
            continue
        assert e.item is not None
        identity = identities[e.index]
        keys = (
            [("nir", identity.nir_hash)]
            if identity.nir_hash
            else [("name", e.item.beneficiary.birth_date, k) for k in sorted(identity.keys)]
        )
        same = next((created[k] for k in keys if k in created), None)
        e.person_id, e.new_person = same or uuid.uuid4(), True
        e.commune = e.item.beneficiary.commune
        for k in keys:
            created.setdefault(k, e.person_id)

    # known people the caller does not follow for the prestation: a legal holder joins
    matched = [e for e in new if e.open and e.person_id is not None and not e.new_person]
    followed = {
        (person, competence)
        for person, _, competence in await ctx.store.memberships(
            [e.person_id for e in matched if e.person_id], [scope.organisation_id]
        )
    }
    for e in matched:
        assert e.item is not None and e.commune is not None
        if (e.person_id, e.item.prestation) in followed:
            continue
        holding = scope.holding(e.item.prestation, e.commune)
        if holding is None or holding.source != "law":
            e.fail(
                NotFound(
                    detail=f"You do not follow this person for {e.item.prestation}.",
                    errors=[FieldError(f"{e.pointer}/beneficiary", "")],
                )
            )
        else:
            e.join = True

    # who decides: the caller when it holds the prestation by law there, else the legal holder
    pending = [e for e in new if e.open and e.item and e.commune]
    lookup = [
        e
        for e in pending
        if e.item and (h := scope.holding(e.item.prestation, str(e.commune))) and h.source != "law"
    ]
    holders = (
        await ctx.store.legal_holders(
            {e.item.prestation for e in lookup if e.item}, {str(e.commune) for e in lookup}
        )
        if lookup
        else {}
    )
    for e in pending:
        assert e.item is not None and e.commune is not None
        holding = scope.holding(e.item.prestation, e.commune)
        if holding is None:
            e.fail(
                _invalid(
                    [
                        FieldError(
                            f"{e.pointer}/beneficiary",
                            f"Your organisation does not hold {e.item.prestation} there.",
                        )
                    ]
                )
            )
            continue
        if holding.source == "law":
            e.deciding_id = scope.organisation_id
        else:
            found = holders.get((e.item.prestation, e.commune), [])
            if not found:
                e.fail(_invalid([FieldError(f"{e.pointer}/prestation", "No legal holder here.")]))
                continue
            e.deciding_id = found[0]
        sides = sides_of(scope.organisation_id, scope.organisation_id, e.deciding_id)
        e.plan = plan_create(_incoming(e.item), sides, e.pointer)
        if e.plan.problem is not None:
            e.fail(e.plan.problem, e.plan.outcome)
        else:
            e.dossier_id = uuid.uuid4()


def _match(ctx: Dossiers, e: _Entry, identity: _Identity, found: list[Any]) -> None:
    """The person of a new dossier, or nothing (to be created), or a problem."""
    assert e.item is not None
    person, p, prestation = e.item.beneficiary, e.pointer, e.item.prestation

    def held(row: Any) -> bool:
        return bool(row.commune_code) and ctx.scope.holds(prestation, row.commune_code)

    if person.id is not None:
        row = next((r for r in found if r.by_id), None)
        if row is None or not held(row):
            e.fail(
                NotFound(detail="No such person.", errors=[FieldError(f"{p}/beneficiary/id", "")])
            )
        else:
            e.person_id, e.commune = row.id, row.commune_code
        return
    same_nir = [r for r in found if r.nir_match]
    if same_nir:
        if len(same_nir) == 1 and held(same_nir[0]):
            e.person_id, e.commune = same_nir[0].id, same_nir[0].commune_code
        else:
            e.fail(
                PossibleDuplicate(
                    detail="A person with this NIR is known where you do not hold "
                    f"{prestation}: ask the partners following them.",
                    errors=[FieldError(f"{p}/beneficiary/nir", "")],
                )
            )
        return
    # same birth date on the caller's communes; a different NIR is a different person
    candidates = [
        r for r in found if not r.by_id and held(r) and not (identity.nir_hash and r.has_nir)
    ]
    same_names = [r for r in candidates if identity.keys & set(r.match_keys)]
    similar = [
        r
        for r in candidates
        if r not in same_names
        and trigram_similarity(identity.folded, r.folded_names) >= SIMILAR_NAMES
    ]
    if len(same_names) == 1 and not similar:
        e.person_id, e.commune = same_names[0].id, same_names[0].commune_code
    elif same_names or similar:
        e.fail(
            PossibleDuplicate(
                detail="Several people, or people with similar names, match: name the person "
                "with beneficiary.id.",
                errors=[FieldError(f"{p}/beneficiary", "Ambiguous identity.")],
                extra={"candidates": sorted(str(r.id) for r in [*same_names, *similar])},
            )
        )
    else:
        missing = [
            FieldError(f"{p}/beneficiary/{name}", "Required to create the person.")
            for name in ("birth_name", "first_names", "birth_date", "commune")
            if getattr(person, name) is None
        ]
        if missing:
            e.fail(_invalid(missing))


# locking the rows to update, and checking them again under the lock ---------------------


async def _lock_and_replan(ctx: Dossiers, entries: list[_Entry]) -> None:
    updating = [e for e in entries if e.open and e.row is not None]
    if not updating:
        return
    fresh = {
        r.id: r for r in await ctx.store.get_many([e.row.id for e in updating], for_update=True)
    }
    visible = await visible_ids(ctx, list(fresh.values()))
    for e in updating:
        row = fresh.get(e.row.id)
        if row is None or row.id not in visible:
            e.fail(NotFound(detail="No such dossier.", errors=[FieldError(e.pointer, "")]))
        elif row.version != e.row.version:
            _plan_one_existing(ctx, e, row)


# what each unit writes --------------------------------------------------------------------


@dataclass(frozen=True)
class _Decider:
    """A dossier past ``draft`` whose deciding organisation must be in the care team."""

    beneficiary_id: uuid.UUID
    deciding_organisation_id: uuid.UUID
    prestation: str


def _sex(item: SyncItem) -> str:
    if item.beneficiary.sex:
        return item.beneficiary.sex
    first = (item.beneficiary.nir or "").strip()[:1]
    return "M" if first in ("1", "3", "7") else "F" if first in ("2", "4", "8") else "X"


def _units(ctx: Dossiers, entries: list[_Entry]) -> list[_Unit]:
    """Group the applied items into units and prepare every row they write."""
    units: list[_Unit] = []
    by_person: dict[uuid.UUID, _Unit] = {}
    for e in entries:
        if not e.open or e.plan is None:
            continue
        if e.row is None and (e.new_person or e.join):
            # items sharing a person the batch creates or joins stand or fall together
            assert e.person_id is not None
            unit = by_person.get(e.person_id)
            if unit is None:
                unit = by_person[e.person_id] = _Unit()
                units.append(unit)
        else:
            unit = _Unit()
            units.append(unit)
        unit.entries.append(e)
    now = clock.now()
    people: set[uuid.UUID] = set()
    joined: set[tuple[uuid.UUID, str]] = set()
    for unit in units:
        for e in unit.entries:
            if e.row is None:
                _new_dossier(ctx, e, unit, now, people, joined)
            else:
                _existing_dossier(ctx, e, unit, now)
    return units


def _ref(
    ctx: Dossiers, item: SyncItem, dossier: uuid.UUID, person: uuid.UUID, now: datetime
) -> dict[str, Any]:
    return {
        "dossier_id": dossier,
        "beneficiary_id": person,
        "organisation_id": ctx.scope.organisation_id,
        "system": item.external_ref.system,
        "external_id": item.external_ref.id,
        "created_at": now,
    }


def _existing_dossier(ctx: Dossiers, e: _Entry, unit: _Unit, now: datetime) -> None:
    assert e.item is not None and e.plan is not None
    row, changes = e.row, e.plan.changes
    if e.link:
        unit.refs.append(_ref(ctx, e.item, row.id, row.beneficiary_id, now))
    if changes:
        current = {name: getattr(row, name) for name in SYNCED_COLUMNS}
        unit.updates.append(
            {**current, **changes, "updated_at": now, "b_id": row.id, "b_version": row.version}
        )
    moved = "status" in changes
    unit.events.append(
        {
            "dossier_id": row.id,
            "beneficiary_id": row.beneficiary_id,
            "at": now,
            "action": "sync",
            "from_status": row.status if moved else None,
            "to_status": changes["status"] if moved else None,
            **actor(ctx.scope, "sync"),
        }
    )
    if any(step.target == DossierStatus.SUBMITTED for step in e.plan.steps):
        unit.deciders.append(
            _Decider(row.beneficiary_id, row.deciding_organisation_id, row.prestation)
        )
    unit.audits.append(("dossier.sync_update", "dossier", row.id, row.beneficiary_id, None))
    unit.changes.append(
        {
            "type": "dossier",
            "resource_id": row.id,
            "action": "status_changed" if moved else "updated",
            "event": "dossier.status_changed" if moved else "dossier.updated",
            "audience": audience_of(row.instructing_organisation_id, row.deciding_organisation_id),
            "status": changes.get("status", row.status),
        }
    )


def _new_dossier(
    ctx: Dossiers,
    e: _Entry,
    unit: _Unit,
    now: datetime,
    people: set[uuid.UUID],
    joined: set[tuple[uuid.UUID, str]],
) -> None:
    scope = ctx.scope
    assert e.item is not None and e.plan is not None
    assert e.person_id is not None and e.dossier_id is not None and e.deciding_id is not None
    item, person_id, changes = e.item, e.person_id, e.plan.changes
    if e.new_person and person_id not in people:
        people.add(person_id)
        unit.people.append(_person_row(ctx, item, person_id, e.commune, now))
        unit.audits.append(("beneficiary.sync_create", "beneficiary", person_id, person_id, None))
    if (e.new_person or e.join) and (person_id, item.prestation) not in joined:
        joined.add((person_id, item.prestation))
        unit.memberships.append(
            {
                "id": uuid.uuid4(),
                "beneficiary_id": person_id,
                "organisation_id": scope.organisation_id,
                "competence": item.prestation,
                "team_role": "member",
                "source": "sync",
                "justification": SYNC_PURPOSE if e.join else None,
                "started_at": now,
            }
        )
        if e.join:
            unit.audits.append(
                ("care_team.sync_join", "beneficiary", person_id, person_id, SYNC_PURPOSE)
            )
    unit.dossiers.append(
        {
            "id": e.dossier_id,
            "beneficiary_id": person_id,
            "prestation": item.prestation,
            "instructing_organisation_id": scope.organisation_id,
            "deciding_organisation_id": e.deciding_id,
            "status": changes["status"],
            "status_changed_at": changes["status_changed_at"],
            "instruction": changes["instruction"],
            "instruction_updated_at": changes["instruction_updated_at"],
            "decision": changes.get("decision"),
            "amount": changes.get("amount"),
            "start_on": changes.get("start_on"),
            "end_on": changes.get("end_on"),
            "decision_reason": changes.get("decision_reason"),
            "decided_on": changes.get("decided_on"),
            "decision_updated_at": changes.get("decision_updated_at"),
            "version": 1,
            "created_at": now,
            "updated_at": now,
        }
    )
    unit.refs.append(_ref(ctx, item, e.dossier_id, person_id, now))
    unit.events.append(
        {
            "dossier_id": e.dossier_id,
            "beneficiary_id": person_id,
            "at": now,
            "action": "create",
            "from_status": None,
            "to_status": changes["status"],
            **actor(ctx.scope, "sync"),
        }
    )
    if changes["status"] != DossierStatus.DRAFT:
        unit.deciders.append(_Decider(person_id, e.deciding_id, item.prestation))
    unit.audits.append(("dossier.sync_create", "dossier", e.dossier_id, person_id, None))
    unit.changes.append(
        {
            "type": "dossier",
            "resource_id": e.dossier_id,
            "action": "created",
            "event": "dossier.created",
            "audience": audience_of(scope.organisation_id, e.deciding_id),
            "status": changes["status"],
        }
    )


def _person_row(
    ctx: Dossiers, item: SyncItem, person_id: uuid.UUID, commune: str | None, now: datetime
) -> dict[str, Any]:
    person = item.beneficiary
    assert person.birth_name and person.first_names and person.birth_date
    nir = check_nir(person.nir) if person.nir else None
    return {
        "id": person_id,
        "birth_name": person.birth_name,
        "usage_name": person.usage_name,
        "first_names": person.first_names,
        "birth_date": person.birth_date,
        "sex": _sex(item),
        "birth_place": None,
        "nir_cipher": ctx.people.nir.encrypt(nir) if nir else None,
        "nir_hash": ctx.people.nir.lookup_hash(nir) if nir else None,
        "nir_missing_reason": None if nir else "non transmis par le système d'information",
        "commune_code": commune,
        "domiciliation_organisation_id": None,
        "address": None,
        "phone": None,
        "email": None,
        "situation": None,
        "match_keys": sorted(
            name_match_keys(person.birth_name, person.usage_name, person.first_names)
        ),
        "folded_names": folded_names(person.birth_name, person.usage_name, person.first_names),
        "last_contact_at": now,
        "created_by_organisation_id": ctx.scope.organisation_id,
        "version": 1,
        "created_at": now,
        "updated_at": now,
    }


# writing ------------------------------------------------------------------------------------


class _Stale(Exception):
    """An update matched no row: the dossier moved out of reach during the batch."""


async def _write_units(ctx: Dossiers, units: Sequence[_Unit]) -> None:
    store = ctx.store
    await store.insert_people([r for u in units for r in u.people])
    await store.join_teams([r for u in units for r in u.memberships])
    await store.insert_dossiers([r for u in units for r in u.dossiers])
    await store.insert_refs([r for u in units for r in u.refs])
    updates = [r for u in units for r in u.updates]
    await store.update_many(updates)
    if updates:
        versions = await store.versions(r["b_id"] for r in updates)
        if any(versions.get(r["b_id"]) != r["b_version"] + 1 for r in updates):
            raise _Stale
    await join_decider(ctx, [d for u in units for d in u.deciders])
    await store.insert_events([r for u in units for r in u.events])
    await ctx.audit.record_many(
        [
            Access(action, resource_type, str(resource_id), person, purpose)
            for u in units
            for action, resource_type, resource_id, person, purpose in u.audits
        ]
    )
    await store.announce([c for u in units for c in u.changes], clock.now())


async def _write(ctx: Dossiers, units: list[_Unit]) -> None:
    """Everything at once in a savepoint; on failure, unit by unit, so that only the units
    that cannot be written fail (each item of a unit then reports an ``error``)."""
    if not units:
        return
    session = ctx.store.session
    try:
        async with session.begin_nested():
            await _write_units(ctx, units)
        return
    except (DBAPIError, _Stale) as error:
        # class and SQLSTATE only: a database message may quote personal values
        log.warning(
            "dossier sync batch written unit by unit after %s (%s)",
            type(error).__name__,
            getattr(getattr(error, "orig", None), "sqlstate", None),
        )
    for unit in units:
        try:
            async with session.begin_nested():
                await _write_units(ctx, [unit])
        except (DBAPIError, _Stale) as error:
            log.warning(
                "dossier sync unit not written: %s (%s)",
                type(error).__name__,
                getattr(getattr(error, "orig", None), "sqlstate", None),
            )
            for e in unit.entries:
                e.fail(
                    Conflict(
                        detail="This item could not be written (changed or taken meanwhile by "
                        "another request): send it again.",
                        errors=[FieldError(e.pointer, "Not written.")],
                    )
                )


def _report(ctx: Dossiers, entries: list[_Entry], instance: str) -> SyncReport:
    request_id = ctx.scope.request_id
    results = []
    for e in entries:
        if e.outcome is None:
            assert e.plan is not None
            e.outcome = e.plan.outcome
        problem = (
            problem_body(e.problem, instance=f"{instance}#{e.pointer}", request_id=request_id)
            if e.problem is not None
            else None
        )
        results.append(
            SyncResult(
                index=e.index,
                external_ref=e.item.external_ref if e.item else None,
                outcome=e.outcome,
                dossier_id=e.dossier_id if e.outcome is not SyncOutcome.ERROR else None,
                problem=problem,
            )
        )
    counts = {str(o): 0 for o in SyncOutcome}
    for r in results:
        counts[str(r.outcome)] += 1
    return SyncReport(results=results, counts=counts)
