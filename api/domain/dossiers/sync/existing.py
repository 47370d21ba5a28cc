"""Items naming dossiers that exist: found by the caller's own references (or ``dossier_id``
the first time), planned against the stored dossier, then locked and planned again if the
dossier moved meanwhile."""

from __future__ import annotations

import uuid

from api.domain.dossiers.repository import OwnRef, StoredDossier
from api.domain.dossiers.rules import Plan, SyncOutcome, plan_update, sides_of
from api.domain.dossiers.service.context import Dossiers
from api.domain.dossiers.service.visibility import visible_ids, visible_rows
from api.domain.dossiers.sync.items import Entry, incoming, invalid, stored
from api.problems import FieldError, Forbidden, NotFound


async def plan_existing(ctx: Dossiers, entries: list[Entry]) -> None:
    live = [e for e in entries if e.open and e.item]
    known = await ctx.store.own_refs(
        (e.item.external_ref.system, e.item.external_ref.id) for e in live if e.item
    )
    wanted: dict[int, uuid.UUID] = {}
    for e in live:
        assert e.item is not None
        ref = known.get((e.item.external_ref.system, e.item.external_ref.id))
        found = ref.dossier_id if ref is not None else None
        named = e.item.dossier_id
        target = found if found is not None else named
        if named is not None and found is not None and named != found:
            e.fail(invalid([FieldError(f"{e.pointer}/dossier_id", "The reference names another.")]))
        elif target is not None:
            wanted[e.index] = target
            e.link = found is None
    settled = await _settled(ctx, live, wanted, known)
    rows = await ctx.store.get_many(d for i, d in wanted.items() if i not in settled)
    visible = await visible_rows(ctx, rows)
    by_id = {r.id: r for r in rows if r.id in visible}
    taken: set[uuid.UUID] = set()
    for e in live:
        if e.index not in wanted or not e.open:
            continue
        if wanted[e.index] in taken:
            detail = "Another item of this batch names the same dossier."
            where = "dossier_id" if e.link else "external_ref"
            e.fail(invalid([FieldError(f"{e.pointer}/{where}", detail)]))
            continue
        taken.add(wanted[e.index])
        if e.index in settled:
            e.dossier_id, e.outcome = wanted[e.index], SyncOutcome.UNCHANGED
        else:
            plan_one_existing(ctx, e, by_id.get(wanted[e.index]))


async def _settled(
    ctx: Dossiers,
    live: list[Entry],
    wanted: dict[int, uuid.UUID],
    known: dict[tuple[str, str], OwnRef],
) -> set[int]:
    """Items found by their reference whose digest is the one their system's sync last wrote
    (nothing wrote the dossier since: migration 0029), and whose dossier the access rule
    still shows the caller: ``unchanged`` without reading the dossier. Visibility is asked
    for all of them at once, as for the dossiers read."""
    candidates: dict[int, OwnRef] = {}
    for e in live:
        if e.index not in wanted or e.link or e.item is None:
            continue
        ref = known[(e.item.external_ref.system, e.item.external_ref.id)]
        if ref.synced_digest is not None and ref.synced_digest == e.item_digest():
            candidates[e.index] = ref
    if not candidates:
        return set()
    items = {e.index: e.item for e in live if e.index in candidates and e.item}
    seen = await visible_ids(
        ctx,
        {
            ref.dossier_id: (ref.beneficiary_id, items[i].prestation)
            for i, ref in candidates.items()
        },
    )
    return {i for i, ref in candidates.items() if ref.dossier_id in seen}


def plan_one_existing(ctx: Dossiers, e: Entry, row: StoredDossier | None) -> None:
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
        e.fail(invalid(errors))
        return
    sides = sides_of(
        ctx.scope.organisation_id, row.instructing_organisation_id, row.deciding_organisation_id
    )
    if not sides:
        e.fail(Forbidden(detail="Only the instructing and deciding organisations sync it."))
        return
    e.plan = plan_update(stored(row), incoming(item), sides, p)
    if e.plan.outcome is SyncOutcome.UNCHANGED and e.link:
        e.plan = Plan(SyncOutcome.UPDATED)
    if e.plan.problem is not None:
        e.fail(e.plan.problem, e.plan.outcome)
    elif e.plan.outcome is SyncOutcome.UNCHANGED:
        e.outcome = SyncOutcome.UNCHANGED


async def lock_and_replan(ctx: Dossiers, entries: list[Entry]) -> None:
    updating = [(e, e.row) for e in entries if e.open and e.row is not None]
    if not updating:
        return
    fresh = {
        r.id: r for r in await ctx.store.get_many([row.id for _, row in updating], for_update=True)
    }
    visible = await visible_rows(ctx, list(fresh.values()))
    for e, planned in updating:
        row = fresh.get(planned.id)
        if row is None or row.id not in visible:
            e.fail(NotFound(detail="No such dossier.", errors=[FieldError(e.pointer, "")]))
        elif row.version != planned.version:
            plan_one_existing(ctx, e, row)
