"""Writing the units of a batch, all at once or unit by unit, and the per-item report."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy.exc import DBAPIError

from api.domain import clock
from api.domain.audit.repository import Access
from api.domain.dossiers.rules import SyncOutcome
from api.domain.dossiers.schemas import SyncReport, SyncResult
from api.domain.dossiers.service.context import Dossiers
from api.domain.dossiers.service.lifecycle import join_decider
from api.domain.dossiers.sync.items import Entry
from api.domain.dossiers.sync.rows import Unit, units_of
from api.problems import Conflict, FieldError, problem_body

log = logging.getLogger(__name__)


class _Stale(Exception):
    """An update matched no row: the dossier moved out of reach during the batch."""


async def _write_units(ctx: Dossiers, units: Sequence[Unit]) -> None:
    store = ctx.store
    await store.insert_people([r for u in units for r in u.people])
    await store.join_teams([r for u in units for r in u.memberships])
    await store.insert_dossiers([r for u in units for r in u.dossiers])
    await store.insert_refs([r for u in units for r in u.refs])
    updates = [r for u in units for r in u.updates]
    if await store.update_many(updates) != len(updates):
        raise _Stale
    await store.record_digests([d for u in units for d in u.digests])
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


async def write_as_planned(ctx: Dossiers, entries: list[Entry]) -> bool:
    """Everything at once in a savepoint, without locking the dossiers first: each is updated
    only if still at the version it was planned against and still one the caller may update
    (its row-level policy), so an update reads its dossier once. False, and nothing kept, when
    a dossier moved or left the caller's reach meanwhile or a statement failed: the caller
    then locks, re-plans and writes again (:func:`write`). An item linking its reference to a
    dossier it leaves as it is carries no update to check the version with: a batch holding
    one is not written this way."""
    if any(
        e.open and e.row is not None and e.plan is not None and not e.plan.changes for e in entries
    ):
        return False
    units = units_of(ctx, entries)
    if not units:
        return True
    try:
        async with ctx.store.session.begin_nested():
            await _write_units(ctx, units)
    except (DBAPIError, _Stale) as error:
        # class and SQLSTATE only: a database message may quote personal values
        log.info(
            "dossier sync batch not written as planned after %s (%s): locked and checked again",
            type(error).__name__,
            getattr(getattr(error, "orig", None), "sqlstate", None),
        )
        return False
    return True


async def write(ctx: Dossiers, units: list[Unit]) -> None:
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


def report(ctx: Dossiers, entries: list[Entry], instance: str) -> SyncReport:
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
