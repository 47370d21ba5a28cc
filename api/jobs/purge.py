"""The retention purge (domain.md §11, CNIL référentiel 2021-028), an operator job run as
the database owner (like migrations), by ``guichet purge`` or the worker. The policy's
figures are rules of the people noun (``api.domain.people.rules``), its queries the people
repository's (``RetentionStore``).

1. **Detach**: a care-team membership ends (``end_reason = 'retention'``) once its
   organisation's ``retention_months`` have passed since the person's last contact; each
   end is written in that organisation's audit trail.
2. **Warn**: the report counts, per organisation, the memberships that will end within
   :data:`~api.domain.people.rules.RETENTION_WARNING`.
3. **Anonymise** the people no organisation follows any more — the last one left through
   retention, or nothing happened to them for
   :data:`~api.domain.people.rules.ANONYMISATION_GRACE` (a departure by mistake can be undone
   meanwhile): identity, contact, NIR, situation, household names, budget, notes and free
   texts go; ids, birth year, commune and the rows statistics count stay, :data:`BATCH` people
   per transaction. Other capabilities clear their own free text by appending to
   :data:`ANONYMISERS`, and keep the people they still need (open referrals…) by appending
   to :data:`KEEPERS`.
4. **Prune the audit trail**: each organisation's entries older than its
   ``audit_retention_months`` — a prefix of its hash chain, anchored so that
   ``guichet audit-verify`` still checks what remains.

Idempotent (a second run changes nothing), and safe to start twice at once: a purge holds
an advisory lock for its whole run, so a concurrent one waits and then finds nothing to do.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection

from api.db.engine import create_engine
from api.domain import clock
from api.domain.aids.repository.retention import anonymise_aid_requests
from api.domain.audit.repository import Access, append_as_owner
from api.domain.orientations.repository import anonymise_orientations
from api.domain.people.repository import RetentionStore
from api.domain.people.repository.retention import EndedMembership
from api.domain.people.rules import (
    ANONYMISATION_GRACE,
    RETENTION_WARNING,
    PurgeReport,
    purge_report,
)
from api.domain.referrals.repository import anonymise_referrals
from api.domain.statistics.repository import detach_statistics
from api.jobs.audit_chain import chain_pending, organisations_with_entries_before, prune_chain

BATCH = 500
REQUEST_ID = "retention-purge"

#: ``(owner connection, person ids, now)``: clears a capability's free text about people
#: being anonymised, in the purge's transaction
Anonymiser = Callable[[AsyncConnection, Sequence[uuid.UUID], datetime], Awaitable[None]]
ANONYMISERS: list[Anonymiser] = [
    anonymise_referrals,
    anonymise_orientations,
    anonymise_aid_requests,
    detach_statistics,
]

#: ``(owner connection, person ids, now)``: those of the ids a capability still needs (an
#: open referral or orientation attaches its parties without a care team): not anonymised
Keeper = Callable[[AsyncConnection, Sequence[uuid.UUID], datetime], Awaitable[set[uuid.UUID]]]
KEEPERS: list[Keeper] = []


async def purge(owner_url: URL, *, now: datetime | None = None) -> PurgeReport:
    """One run on a connection of its own, holding the purge lock throughout; each step
    commits as it goes."""
    now = now or clock.now()
    engine = create_engine(owner_url, pool_size=1, max_overflow=0)
    try:
        async with engine.connect() as conn:
            store = RetentionStore(conn)
            await store.lock()
            await conn.commit()
            try:
                ended = await _detach(conn, store, now)
                due = await store.due_within(now, now + RETENTION_WARNING)
                await conn.commit()
                anonymised = await _anonymise(conn, store, now)
                pruned = await _prune(conn, now)
            finally:
                await conn.rollback()
                await store.unlock()
                await conn.commit()
    finally:
        await engine.dispose()
    return purge_report(
        now,
        detached_from=[m.organisation_id for m in ended],
        due=due,
        anonymised=anonymised,
        pruned=pruned,
    )


async def _detach(
    conn: AsyncConnection, store: RetentionStore, now: datetime
) -> list[EndedMembership]:
    ended = await store.detach_expired(now)
    by_organisation: dict[uuid.UUID, list[Access]] = defaultdict(list)
    for m in ended:
        by_organisation[m.organisation_id].append(
            Access(
                "care_team.retention_end",
                "care_team_membership",
                str(m.id),
                beneficiary_id=m.beneficiary_id,
                purpose="retention",
            )
        )
    # organisations in a fixed order, so that two purges write their entries alike
    for organisation_id in sorted(by_organisation):
        await append_as_owner(
            conn, organisation_id, by_organisation[organisation_id], request_id=REQUEST_ID
        )
    await conn.commit()
    return ended


async def _anonymise(conn: AsyncConnection, store: RetentionStore, now: datetime) -> int:
    """How many people were anonymised, :data:`BATCH` per transaction."""
    due = await store.anonymisable(now, now - ANONYMISATION_GRACE)
    kept: set[uuid.UUID] = set()
    for keeper in list(KEEPERS):
        kept |= await keeper(conn, due, now)
    due = [p for p in due if p not in kept]
    anonymised = 0
    for start in range(0, len(due), BATCH):
        done = await store.anonymise(due[start : start + BATCH], now)
        if done:
            for anonymiser in list(ANONYMISERS):
                await anonymiser(conn, done, now)
        anonymised += len(done)
        await conn.commit()
    return anonymised


async def _prune(conn: AsyncConnection, now: datetime) -> dict[uuid.UUID, int]:
    """How many audit entries were deleted, per organisation."""
    await chain_pending(conn)  # the chains as complete as they can be before pruning them
    await conn.commit()
    pruned: dict[uuid.UUID, int] = {}
    for organisation_id, cutoff in await organisations_with_entries_before(conn, now):
        # one transaction per organisation: its writers wait only for their own chain
        pruned[organisation_id] = await prune_chain(conn, organisation_id, cutoff, now)
        await conn.commit()
    return pruned
