"""The audit trail: append-only entries, hash-chained per organisation (domain.md §11).

Each chained entry's ``hash`` is ``sha256(prev_hash + canonical JSON of its fields)`` and its
``prev_hash`` is the hash of the entry before it in its organisation's chain (64 zeros for
the first one); ``chain_position`` orders the chain.

Requests append entries **unchained**, in their own transaction and without any lock, so
that one organisation's reads never wait for each other. The owner chains them after
commit (:func:`chain_pending`: ``guichet worker`` every second, and ``guichet audit-verify``
before it verifies), in id order, each organisation under its advisory lock so the chain
never forks. The runtime role may only INSERT (unchained entries: a restrictive policy) and
SELECT, and :func:`verify_chains`, run as the owner, finds any chained entry changed or
removed in the middle of a chain (removing the newest entries of a chain leaves it valid:
detecting that needs the last hashes kept elsewhere). An entry not chained yet is protected
by the runtime role's grants only: whoever holds the owner role may change or delete it
unnoticed until the next chaining round.

The retention purge deletes the oldest entries of a chain (:func:`prune_chain`): the hash
of the last deleted entry is kept in ``audit_chain_anchor``, and verification starts from it,
so removing one more old entry by hand is still detected.

Entries hold ids, action names and purposes only, never personal values.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, bindparam, delete, func, literal, or_, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from api.auth.scope import Scope
from api.db.tables import AuditChainAnchor, AuditEntry, Organisation
from api.domain import clock

_entry = AuditEntry.__table__  # type: ignore[attr-defined]
_org = Organisation.__table__  # type: ignore[attr-defined]
_anchor = AuditChainAnchor.__table__  # type: ignore[attr-defined]

AnyRow = Row[tuple[Any, ...]]

GENESIS = "0" * 64

#: the fields covered by an entry's hash, in the canonical form's order
CHAINED_FIELDS = (
    "at",
    "organisation_id",
    "actor_user_id",
    "actor_client_id",
    "acting_agent",
    "action",
    "resource_type",
    "resource_id",
    "beneficiary_id",
    "purpose",
    "request_id",
)

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


def _lock(organisation_id: uuid.UUID) -> Any:
    """The statement taking the organisation's audit lock until the transaction ends."""
    return select(func.pg_advisory_xact_lock(_LOCK_NAMESPACE, _lock_key(organisation_id)))


@dataclass(frozen=True)
class Access:
    """One access to record (the actor and organisation come from the scope)."""

    action: str
    resource_type: str
    resource_id: str | None
    beneficiary_id: uuid.UUID | None = None
    purpose: str | None = None


def _insert_in_order() -> Any:
    """One INSERT of every row, from one array per column: ``unnest ... WITH ORDINALITY``
    hands them over in list order, so identities follow the order of the accesses. Built
    once: the values are bound at execution (``p_<column>``: a list per column)."""
    arrays = [bindparam(f"p_{name}", type_=ARRAY(_entry.c[name].type)) for name in CHAINED_FIELDS]
    given = (
        func.unnest(*arrays)
        .table_valued(*CHAINED_FIELDS, with_ordinality="n")
        .render_derived(name="given")
    )
    ordered = select(*(given.c[name] for name in CHAINED_FIELDS)).order_by(given.c.n)
    return _entry.insert().from_select(list(CHAINED_FIELDS), ordered)


_INSERT_UNCHAINED = _insert_in_order()


def _insert_parameters(entries: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    return {f"p_{name}": [e[name] for e in entries] for name in CHAINED_FIELDS}


def chained(prev_hash: str, entries: Sequence[Mapping[Any, Any]]) -> list[dict[str, Any]]:
    """``entries`` with their ``prev_hash`` and ``hash``, each chained to the one before."""
    rows = []
    for values in entries:
        digest = entry_hash(prev_hash, values)
        rows.append({**values, "prev_hash": prev_hash, "hash": digest})
        prev_hash = digest
    return rows


class AuditLog:
    """Writes the scope's organisation's entries and reads what the scope may see of them."""

    def __init__(self, session: AsyncSession, scope: Scope) -> None:
        self.session = session
        self.scope = scope

    async def record(
        self,
        action: str,
        resource_type: str,
        resource_id: str | None,
        *,
        beneficiary_id: uuid.UUID | None = None,
        purpose: str | None = None,
    ) -> None:
        """Append one entry in the caller's transaction (it commits or rolls back with the
        access it records), unchained: no lock, nothing waits for another request."""
        await self.record_many(
            [Access(action, resource_type, resource_id, beneficiary_id, purpose)]
        )

    async def record_many(self, accesses: Sequence[Access]) -> None:
        """Append entries in this order with one INSERT (a list view: one entry per person
        listed), unchained: the owner chains them after commit (:func:`chain_pending`)."""
        await self._append(self.scope.organisation_id, accesses)

    async def record_in(self, organisation_id: uuid.UUID, access: Access) -> None:
        """Append one entry to *another* organisation's chain, with this scope's actor: the
        platform operator enrolling a first admin, or a user answering an invitation, acts
        on an organisation whose admins and DPO must read it in their own trail. The
        transaction's acting organisation is switched for the insert only (the write policy
        reads it) and restored before returning."""
        if organisation_id == self.scope.organisation_id:
            await self._append(organisation_id, [access])
            return
        await self._act_for(organisation_id)
        try:
            await self._append(organisation_id, [access])
        finally:
            await self._act_for(self.scope.organisation_id)

    async def record_for(self, organisation_id: uuid.UUID, access: Access) -> None:
        """In ``organisation_id``'s trail; when the scope acts on another organisation (the
        platform operator), its own trail keeps a copy."""
        if organisation_id != self.scope.organisation_id:
            await self.record_in(organisation_id, access)
        await self._append(self.scope.organisation_id, [access])

    async def _act_for(self, organisation_id: uuid.UUID) -> None:
        await self.session.execute(
            select(func.set_config("guichet.organisation_id", str(organisation_id), True))
        )

    async def _append(self, organisation_id: uuid.UUID, accesses: Sequence[Access]) -> None:
        if not accesses:
            return
        scope = self.scope
        at = clock.now()
        entries = [
            {
                "at": at,
                "organisation_id": organisation_id,
                "actor_user_id": scope.user_id,
                "actor_client_id": scope.client_id,
                "acting_agent": scope.acting_agent,
                "action": a.action,
                "resource_type": a.resource_type,
                "resource_id": a.resource_id,
                "beneficiary_id": a.beneficiary_id,
                "purpose": a.purpose,
                "request_id": scope.request_id,
            }
            for a in accesses
        ]
        await self.session.execute(_INSERT_UNCHAINED, _insert_parameters(entries))

    async def access_log(
        self, beneficiary_id: uuid.UUID, *, after_id: int | None, limit: int
    ) -> list[AnyRow]:
        """Entries about the person (and the records merged into them) by every
        organisation, newest first, with the organisation's name; ``limit + 1`` rows at most.
        The caller checks it may read the log first; the database function shows other
        organisations' entries only to an organisation following the person."""
        found = (
            func.person_access_log(beneficiary_id, after_id, limit + 1)
            .table_valued(*(c.name for c in _entry.columns))
            .alias("e")
        )
        stmt = (
            select(found, _org.c.name.label("organisation_name"))
            .join(_org, _org.c.id == found.c.organisation_id)
            .order_by(found.c.id.desc())
        )
        return list((await self.session.execute(stmt)).all())

    async def trail(
        self,
        *,
        actor_id: uuid.UUID | None,
        beneficiary_id: uuid.UUID | None,
        action: str | None,
        from_: datetime | None,
        to: datetime | None,
        after_id: int | None,
        limit: int,
    ) -> list[AnyRow]:
        """The scope's organisation's own entries, newest first, ``from_ <= at < to``;
        ``limit + 1`` rows at most."""
        conditions = [_entry.c.organisation_id == self.scope.organisation_id]
        if actor_id is not None:
            conditions.append(
                or_(_entry.c.actor_user_id == actor_id, _entry.c.actor_client_id == actor_id)
            )
        if beneficiary_id is not None:
            conditions.append(_entry.c.beneficiary_id == beneficiary_id)
        if action is not None:
            conditions.append(_entry.c.action == action)
        if from_ is not None:
            conditions.append(_entry.c.at >= from_)
        if to is not None:
            conditions.append(_entry.c.at < to)
        if after_id is not None:
            conditions.append(_entry.c.id < after_id)
        stmt = select(_entry).where(*conditions).order_by(_entry.c.id.desc()).limit(limit + 1)
        return list((await self.session.execute(stmt)).all())


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


# run as the owner: chaining (the worker, audit-verify), the retention purge ----------------

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


async def append_as_owner(
    conn: AsyncConnection,
    organisation_id: uuid.UUID,
    accesses: Sequence[Access],
    *,
    request_id: str,
) -> None:
    """Append entries to ``organisation_id``'s trail for an operator job (no actor), in the
    connection's transaction, unchained like a request's."""
    if not accesses:
        return
    at = clock.now()
    entries = [
        {
            "at": at,
            "organisation_id": organisation_id,
            "actor_user_id": None,
            "actor_client_id": None,
            "acting_agent": None,
            "action": a.action,
            "resource_type": a.resource_type,
            "resource_id": a.resource_id,
            "beneficiary_id": a.beneficiary_id,
            "purpose": a.purpose,
            "request_id": request_id,
        }
        for a in accesses
    ]
    await conn.execute(_INSERT_UNCHAINED, _insert_parameters(entries))


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
