"""Items creating a dossier: its person (matched among known people, or created by the
batch) and its deciding organisation."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from api.domain.dossiers.repository import PersonMatch
from api.domain.dossiers.rules import plan_create, sides_of
from api.domain.dossiers.schemas import SyncItem
from api.domain.dossiers.service.context import Dossiers
from api.domain.dossiers.sync.items import Entry, incoming, invalid
from api.domain.identity import check_nir, name_match_keys, trigram_similarity
from api.domain.people.service import folded_names
from api.problems import FieldError, NotFound, PossibleDuplicate

#: names this similar (pg_trgm semantics) with the same birth date make a likely duplicate
SIMILAR_NAMES = 0.5


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


async def plan_new(ctx: Dossiers, entries: list[Entry]) -> None:
    """Find or create the person of each new dossier, then its deciding organisation."""
    new = [e for e in entries if e.open and e.item and e.row is None]
    if not new:
        return
    identities = {e.index: _identity(ctx, e.item) for e in new if e.item}
    await _match_people(ctx, new, identities)
    _create_people(new, identities)
    await _join_matched(ctx, new)
    await _plan_deciders(ctx, new)


async def _match_people(ctx: Dossiers, new: list[Entry], identities: dict[int, _Identity]) -> None:
    matches = await ctx.store.person_matches(
        [e.index for e in new],
        [e.item.beneficiary.id if e.item else None for e in new],
        [identities[e.index].nir_hash for e in new],
        [e.item.beneficiary.birth_date if e.item else None for e in new],
        _territory(ctx, {e.item.prestation for e in new if e.item}),
    )
    by_item: dict[int, list[PersonMatch]] = {}
    for m in matches:
        by_item.setdefault(m.idx, []).append(m)
    for e in new:
        _match(ctx, e, identities[e.index], by_item.get(e.index, []))


def _create_people(new: list[Entry], identities: dict[int, _Identity]) -> None:
    """People created by the batch: one per NIR, or per birth date and names."""
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


async def _join_matched(ctx: Dossiers, new: list[Entry]) -> None:
    """Known people the caller does not follow for the prestation: a legal holder joins."""
    scope = ctx.scope
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


async def _plan_deciders(ctx: Dossiers, new: list[Entry]) -> None:
    """Who decides: the caller when it holds the prestation by law there, else the legal
    holder; then the plan of the new dossier."""
    scope = ctx.scope
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
                invalid(
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
                e.fail(invalid([FieldError(f"{e.pointer}/prestation", "No legal holder here.")]))
                continue
            e.deciding_id = found[0]
        sides = sides_of(scope.organisation_id, scope.organisation_id, e.deciding_id)
        e.plan = plan_create(incoming(e.item), sides, e.pointer)
        if e.plan.problem is not None:
            e.fail(e.plan.problem, e.plan.outcome)
        else:
            e.dossier_id = uuid.uuid4()


def _held(ctx: Dossiers, prestation: str, row: PersonMatch) -> bool:
    return ctx.scope.holds(prestation, row.commune_code) if row.commune_code else False


def _match(ctx: Dossiers, e: Entry, identity: _Identity, found: list[PersonMatch]) -> None:
    """The person of a new dossier, or nothing (to be created), or a problem: by the id the
    item names, else by NIR, else by names and birth date."""
    assert e.item is not None
    person, p, prestation = e.item.beneficiary, e.pointer, e.item.prestation
    if person.id is not None:
        row = next((r for r in found if r.by_id), None)
        if row is None or not _held(ctx, prestation, row):
            e.fail(
                NotFound(detail="No such person.", errors=[FieldError(f"{p}/beneficiary/id", "")])
            )
        else:
            e.person_id, e.commune = row.id, row.commune_code
        return
    same_nir = [r for r in found if r.nir_match]
    if same_nir:
        if len(same_nir) == 1 and _held(ctx, prestation, same_nir[0]):
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
    _match_by_names(ctx, e, identity, found)


def _match_by_names(ctx: Dossiers, e: Entry, identity: _Identity, found: list[PersonMatch]) -> None:
    """Same birth date on the caller's communes; a different NIR is a different person."""
    assert e.item is not None
    person, p, prestation = e.item.beneficiary, e.pointer, e.item.prestation
    candidates = [
        r
        for r in found
        if not r.by_id and _held(ctx, prestation, r) and not (identity.nir_hash and r.has_nir)
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
            e.fail(invalid(missing))
