"""The owner's audit jobs: chaining the entries requests appended, verifying the chains, and
pruning them for retention (domain.md §11). ``guichet worker`` chains every second,
``guichet audit-verify`` chains then verifies, the retention purge prunes.

Each chained entry's ``hash`` is ``sha256(prev_hash + canonical JSON of its fields)`` and its
``prev_hash`` is the hash of the entry before it in its organisation's chain (64 zeros for
the first one); ``chain_position`` orders the chain.

Requests append entries unchained (:class:`api.domain.audit.repository.AuditLog`); the
owner chains them after commit (:func:`chain_pending`), in id order, each organisation under
its advisory lock so the chain never forks. :func:`verify_chains`, run as the owner, finds
any chained entry changed or removed in the middle of a chain (removing the newest entries
of a chain leaves it valid: detecting that needs the last hashes kept elsewhere). An entry
not chained yet is protected by the runtime role's grants only: whoever holds the owner role
may change or delete it unnoticed until the next chaining round.

The retention purge deletes the oldest entries of a chain (:func:`prune_chain`): the hash
of the last deleted entry is kept in ``audit_chain_anchor``, and verification starts from it,
so removing one more old entry by hand is still detected.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, Table, delete, func, literal, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from api.db.base import core_table
from api.db.tables import AuditChainAnchor, AuditEntry, Organisation
from api.domain.audit.repository import CHAINED_FIELDS

# Core on the tables: the chainer reads and updates entries in batches of thousands
_entry: Table = core_table(AuditEntry)
_anchor: Table = core_table(AuditChainAnchor)
_org: Table = core_table(Organisation)

GENESIS = "0" * 64

# first half of the two-key advisory lock: keeps audit locks apart from any other user of
# advisory locks (the migration lock uses the one-bigint form)
_LOCK_NAMESPACE = 0x41554454  # "AUDT"


def _canonical_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def entry_hash(prev_hash: str, entry: Mapping[Any, Any]) -> str:
    """The hash of ``entry`` (a mapping holding at least :data:`CHAINED_FIELDS`) chained to
    ``prev_hash``: the one definition used to write and to verify."""
    fields = {name: _canonical_value(entry[name]) for name in CHAINED_FIELDS}
    body = json.dumps(fields, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256((prev_hash + body).encode()).hexdigest()


def _lock_key(organisation_id: uuid.UUID) -> int:
    # a signed int4 from the uuid; a collision only makes two organisations share a queue
    return int.from_bytes(organisation_id.bytes[:4], "big", signed=True)


def _lock(organisation_id: uuid.UUID) -> Select[Any]:
    """The statement taking the organisation's audit lock until the transaction ends."""
    return select(func.pg_advisory_xact_lock(_LOCK_NAMESPACE, _lock_key(organisation_id)))


def chained(prev_hash: str, entries: Sequence[Mapping[Any, Any]]) -> list[dict[str, Any]]:
    """``entries`` with their ``prev_hash`` and ``hash``, each chained to the one before."""
    rows = []
    for values in entries:
        digest = entry_hash(prev_hash, values)
        rows.append({**values, "prev_hash": prev_hash, "hash": digest})
        prev_hash = digest
    return rows


async def verify_chains(conn: AsyncConnection) -> list[tuple[uuid.UUID, int]]:
    """Recompute every organisation's chain in chain order, from its anchor when the purge
    deleted its oldest entries; for each broken one, the organisation and its first entry
    whose ``prev_hash`` or ``hash`` does not match. Entries not chained yet are skipped
    (:func:`chain_pending` first to cover them).

    Run as the owner: the runtime role sees only part of the entries."""
    anchors = {
        r.organisation_id: r.hash
        for r in await conn.execute(select(_anchor.c.organisation_id, _anchor.c.hash))
    }
    stmt = (
        select(_entry)
        .where(_entry.c.chain_position.is_not(None))
        .order_by(_entry.c.organisation_id, _entry.c.chain_position)
    )
    broken: list[tuple[uuid.UUID, int]] = []
    current: uuid.UUID | None = None
    expected = GENESIS
    failed = False
    result = await conn.stream(stmt.execution_options(yield_per=1000))
    async for row in result:
        entry = row._mapping
        if entry["organisation_id"] != current:
            current, failed = entry["organisation_id"], False
            expected = anchors.get(current, GENESIS)
        if failed:
            continue
        if entry["prev_hash"] != expected or entry["hash"] != entry_hash(expected, entry):
            broken.append((entry["organisation_id"], entry["id"]))
            failed = True
        expected = entry["hash"]
    return broken


_CHAIN_BATCH = 5000

_SET_CHAINED = text(
    "UPDATE audit_entry AS e SET chain_position = c.position, prev_hash = c.prev_hash, "
    "hash = c.hash FROM unnest(CAST(:ids AS bigint[]), CAST(:positions AS bigint[]), "
    "CAST(:prev_hashes AS text[]), CAST(:hashes AS text[])) AS c(id, position, prev_hash, hash) "
    "WHERE e.id = c.id AND e.chain_position IS NULL"
)


async def chain_pending(conn: AsyncConnection) -> int:
    """Chain every committed entry not chained yet, organisation by organisation, in the
    connection's transaction; how many were chained."""
    organisations = await conn.scalars(
        select(_entry.c.organisation_id).where(_entry.c.chain_position.is_(None)).distinct()
    )
    return sum([await chain_organisation(conn, o) for o in sorted(organisations.all())])


async def chain_organisation(conn: AsyncConnection, organisation_id: uuid.UUID) -> int:
    """Chain ``organisation_id``'s unchained entries in id order after the head of its chain,
    under its audit lock (chainers and the purge of one chain take turns; requests never
    take it)."""
    await conn.execute(_lock(organisation_id))
    position, prev_hash = await _head(conn, organisation_id)
    done = 0
    while True:
        pending = (
            await conn.execute(
                select(_entry)
                .where(
                    _entry.c.organisation_id == organisation_id,
                    _entry.c.chain_position.is_(None),
                )
                .order_by(_entry.c.id)
                .limit(_CHAIN_BATCH)
            )
        ).all()
        if not pending:
            return done
        rows = chained(prev_hash, [row._mapping for row in pending])
        positions = list(range(position + 1, position + 1 + len(rows)))
        await conn.execute(
            _SET_CHAINED,
            {
                "ids": [row.id for row in pending],
                "positions": positions,
                "prev_hashes": [r["prev_hash"] for r in rows],
                "hashes": [r["hash"] for r in rows],
            },
        )
        position, prev_hash = positions[-1], rows[-1]["hash"]
        done += len(rows)


async def _head(conn: AsyncConnection, organisation_id: uuid.UUID) -> tuple[int, str]:
    """The position and hash of the organisation's newest chained entry (its anchor, or the
    genesis, at position 0 when it has none)."""
    newest = (
        await conn.execute(
            select(_entry.c.chain_position, _entry.c.hash)
            .where(
                _entry.c.organisation_id == organisation_id,
                _entry.c.chain_position.is_not(None),
            )
            .order_by(_entry.c.chain_position.desc())
            .limit(1)
        )
    ).first()
    if newest is not None:
        return int(newest.chain_position), str(newest.hash)
    anchored = await conn.scalar(
        select(_anchor.c.hash).where(_anchor.c.organisation_id == organisation_id)
    )
    return 0, str(anchored) if anchored else GENESIS


async def organisations_with_entries_before(
    conn: AsyncConnection, now: datetime
) -> list[tuple[uuid.UUID, datetime]]:
    """Organisations whose oldest entry is older than their audit retention, with the
    instant before which entries go (a probe of each chain's first entry)."""
    oldest = (
        select(_entry.c.at)
        .where(_entry.c.organisation_id == _org.c.id)
        .order_by(_entry.c.id)
        .limit(1)
        .scalar_subquery()
    )
    cutoff = literal(now, _entry.c.at.type) - func.make_interval(0, _org.c.audit_retention_months)
    rows = await conn.execute(
        select(_org.c.id, cutoff.label("cutoff")).where(oldest < cutoff).order_by(_org.c.id)
    )
    return [(r.id, r.cutoff) for r in rows]


async def prune_chain(
    conn: AsyncConnection, organisation_id: uuid.UUID, cutoff: datetime, now: datetime
) -> int:
    """Delete the organisation's entries older than ``cutoff`` — always a prefix of its
    chain, up to the first entry to keep — and anchor the chain on the last one deleted.
    Chains what is pending first, under the organisation's audit lock (held until the
    transaction ends: chainers wait, the chain never forks). Returns how many entries went."""
    await chain_organisation(conn, organisation_id)
    chain = (_entry.c.organisation_id == organisation_id, _entry.c.chain_position.is_not(None))
    first_kept = await conn.scalar(
        select(_entry.c.chain_position)
        .where(*chain, _entry.c.at >= cutoff)
        .order_by(_entry.c.chain_position)
        .limit(1)
    )
    last_pruned_stmt = select(_entry.c.id, _entry.c.chain_position, _entry.c.hash).where(*chain)
    if first_kept is not None:
        last_pruned_stmt = last_pruned_stmt.where(_entry.c.chain_position < first_kept)
    last_pruned = (
        await conn.execute(last_pruned_stmt.order_by(_entry.c.chain_position.desc()).limit(1))
    ).first()
    if last_pruned is None:
        return 0
    deleted = await conn.execute(
        delete(_entry).where(*chain, _entry.c.chain_position <= last_pruned.chain_position)
    )
    anchor = {
        "organisation_id": organisation_id,
        "entry_id": last_pruned.id,
        "hash": last_pruned.hash,
        "pruned_at": now,
    }
    await conn.execute(
        pg_insert(_anchor)
        .values(**anchor)
        .on_conflict_do_update(
            index_elements=[_anchor.c.organisation_id],
            set_={k: v for k, v in anchor.items() if k != "organisation_id"},
        )
    )
    return int(deleted.rowcount or 0)
