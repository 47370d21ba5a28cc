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
memberships, legal holders) and everything is written with one statement per table inside a
savepoint, each dossier updated only if still at the version it was planned against (in id
order), so the dossiers are read once. An item whose own reference keeps its digest (the sync
item that last wrote the dossier, forgotten by any later write to it: migration 0029) is
``unchanged`` without reading its dossier, once the access rule, asked for the batch in one
call, still shows the dossier. Should the write fail (a dossier moved or left the caller's
reach since it was read, a reference taken meanwhile by a concurrent batch…), nothing of it
is kept: the dossiers to update are locked in id order and re-checked (a moved one planned
again, one no longer visible refused), the batch is written again, and if that fails too,
unit by unit, each in its own savepoint, so only the units that cannot be written are
reported as errors. A batch that links a reference to a dossier without changing it takes
the locks first (nothing else would check that dossier's version).
"""

from __future__ import annotations

from api.auth.permissions import Action
from api.domain.dossiers.schemas import SyncBatch, SyncReport
from api.domain.dossiers.service import Dossiers
from api.domain.dossiers.sync.existing import lock_and_replan, plan_existing
from api.domain.dossiers.sync.items import Entry, check_items, parse
from api.domain.dossiers.sync.new import plan_new
from api.domain.dossiers.sync.rows import units_of
from api.domain.dossiers.sync.write import report, write, write_as_planned


async def sync(
    ctx: Dossiers, batch: SyncBatch, *, instance: str, nul_free: bool = False
) -> SyncReport:
    scope = ctx.scope
    scope.require(Action.SYNC_DOSSIERS)
    entries = [Entry(i) for i in range(len(batch.items))]
    parse(entries, batch.items, nul_free=nul_free)
    await check_items(ctx, entries)
    await plan_existing(ctx, entries)
    await plan_new(ctx, entries)
    if not await write_as_planned(ctx, entries):
        await lock_and_replan(ctx, entries)
        await write(ctx, units_of(ctx, entries))
    return report(ctx, entries, instance)


__all__ = ["sync"]
