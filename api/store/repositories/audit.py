"""The audit trail: append-only entries, hash-chained per organisation (domain.md §11).

Each entry's ``hash`` is ``sha256(prev_hash + canonical JSON of its fields)`` and its
``prev_hash`` is the hash of the organisation's previous entry (64 zeros for the first one).
Writers of one organisation are serialised by a transaction-scoped advisory lock, so the
chain never forks; other organisations never wait. The runtime role may only INSERT and
SELECT, and :func:`verify_chains`, run as the owner, finds any entry changed or removed in
the middle of a chain (removing the newest entries of a chain leaves it valid: detecting that
needs the last hashes kept elsewhere).

Entries hold ids, action names and purposes only, never personal values.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from api.auth.scope import Scope
from api.domain import clock
from api.store.tables import AuditEntry, Organisation

_entry = AuditEntry.__table__  # type: ignore[attr-defined]
_org = Organisation.__table__  # type: ignore[attr-defined]

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
        access it records). Holds the organisation's audit lock until that transaction ends."""
        scope = self.scope
        org = scope.organisation_id
        await self.session.execute(
            select(func.pg_advisory_xact_lock(_LOCK_NAMESPACE, _lock_key(org)))
        )
        # the head of this organisation's chain (the acting one: set per transaction)
        prev_hash = (await self.session.scalar(select(func.audit_chain_head()))) or GENESIS
        values: dict[str, Any] = {
            # taken under the lock, so instants follow the chain's order
            "at": clock.now(),
            "organisation_id": org,
            "actor_user_id": scope.user_id,
            "actor_client_id": scope.client_id,
            "acting_agent": scope.acting_agent,
            "action": action,
            "resource_type": resource_type,
            "resource_id": resource_id,
            "beneficiary_id": beneficiary_id,
            "purpose": purpose,
            "request_id": scope.request_id,
        }
        await self.session.execute(
            _entry.insert().values(
                **values, prev_hash=prev_hash, hash=entry_hash(prev_hash, values)
            )
        )

    async def access_log(
        self, beneficiary_id: uuid.UUID, *, after_id: int | None, limit: int
    ) -> list[AnyRow]:
        """Entries about the person by every organisation, newest first, with the
        organisation's name; ``limit + 1`` rows at most. The caller checks attachment first
        (row-level security shows other organisations' entries to attached ones only)."""
        stmt = (
            select(_entry, _org.c.name.label("organisation_name"))
            .join(_org, _org.c.id == _entry.c.organisation_id)
            .where(_entry.c.beneficiary_id == beneficiary_id)
        )
        if after_id is not None:
            stmt = stmt.where(_entry.c.id < after_id)
        stmt = stmt.order_by(_entry.c.id.desc()).limit(limit + 1)
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
    """Recompute every organisation's chain in id order; for each broken one, the
    organisation and its first entry whose ``prev_hash`` or ``hash`` does not match.

    Run as the owner: the runtime role sees only part of the entries."""
    stmt = select(_entry).order_by(_entry.c.organisation_id, _entry.c.id)
    broken: list[tuple[uuid.UUID, int]] = []
    current: uuid.UUID | None = None
    expected = GENESIS
    failed = False
    result = await conn.stream(stmt.execution_options(yield_per=1000))
    async for row in result:
        entry = row._mapping
        if entry["organisation_id"] != current:
            current, expected, failed = entry["organisation_id"], GENESIS, False
        if failed:
            continue
        if entry["prev_hash"] != expected or entry["hash"] != entry_hash(expected, entry):
            broken.append((entry["organisation_id"], entry["id"]))
            failed = True
        expected = entry["hash"]
    return broken
