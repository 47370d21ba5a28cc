"""The audit trail of a request: what it appends and what it reads (domain.md §11).

Requests append entries **unchained**, in their own transaction and without any lock, so
that one organisation's reads never wait for each other: one INSERT per call, whatever the
number of entries it appends. The owner chains them after commit (``guichet worker`` and
``guichet audit-verify``: :mod:`api.jobs.audit_chain`, which also verifies the chains and
prunes them for retention). The runtime role may only INSERT (unchained entries: a
restrictive policy) and SELECT.

Entries hold ids, action names and purposes only, never personal values.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Insert, String, Table, bindparam, func, or_, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import aliased
from sqlmodel import col

from api.auth.scope import Scope
from api.db.base import core_table
from api.db.tables import AuditEntry, Organisation
from api.domain import clock

#: the fields an entry is written with and its hash covers, in the canonical form's order
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

# the hot path appends through Core: one statement built once, no ORM unit of work
_entry: Table = core_table(AuditEntry)


@dataclass(frozen=True)
class Access:
    """One access to record (the actor and organisation come from the scope)."""

    action: str
    resource_type: str
    resource_id: str | None
    beneficiary_id: uuid.UUID | None = None
    purpose: str | None = None


def _insert_in_order() -> Insert:
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


_POSTGRESQL = postgresql.dialect()  # type: ignore[no-untyped-call]


def _cast(name: str) -> str:
    """The type a bound field is read as: the column's, text for strings (a cast to
    ``varchar(n)`` would truncate what the column's length must refuse)."""
    column_type = _entry.c[name].type
    if column_type._type_affinity is String:
        return "text"
    return str(column_type.compile(dialect=_POSTGRESQL))


def insert_one_when(first_parameter: int, condition: str) -> str:
    """The INSERT of one entry, for a statement that records the access it makes: the fields
    bound as ``$first_parameter`` and the next ones in :data:`CHAINED_FIELDS` order (the
    values of :meth:`AuditLog.entry`), written only when ``condition`` (SQL over the
    embedding statement, e.g. "the record was returned") holds. Built once by its caller."""
    typed = ", ".join(
        f"${first_parameter + i}::{_cast(name)}" for i, name in enumerate(CHAINED_FIELDS)
    )
    return (
        f"INSERT INTO {_entry.name} ({', '.join(CHAINED_FIELDS)}) SELECT {typed} WHERE {condition}"
    )


def insert_many(first_parameter: int) -> str:
    """The INSERT of several entries, in order, for a statement that records the accesses it
    makes: one array per field bound as ``$first_parameter`` and the next ones in
    :data:`CHAINED_FIELDS` order (the values of :meth:`AuditLog.entries`). Built once by its
    caller."""
    fields = ", ".join(CHAINED_FIELDS)
    arrays = ", ".join(
        f"${first_parameter + i}::{_cast(name)}[]" for i, name in enumerate(CHAINED_FIELDS)
    )
    return (  # constants only: no value is spliced in
        f"INSERT INTO {_entry.name} ({fields}) SELECT {fields}"  # noqa: S608
        f" FROM unnest({arrays}) WITH ORDINALITY AS given({fields}, n) ORDER BY n"
    )


def _insert_parameters(entries: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    return {f"p_{name}": [e[name] for e in entries] for name in CHAINED_FIELDS}


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
        listed), unchained: the owner chains them after commit
        (:func:`api.jobs.audit_chain.chain_pending`)."""
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

    def entry(self, access: Access) -> tuple[Any, ...]:
        """The fields of the scope's organisation's entry for ``access``, in
        :data:`CHAINED_FIELDS` order: the values bound to :func:`insert_one_when`."""
        fields = self._fields(self.scope.organisation_id, access, clock.now())
        return tuple(fields[name] for name in CHAINED_FIELDS)

    def entries(self, accesses: Sequence[Access]) -> tuple[list[Any], ...]:
        """The scope's organisation's entries for ``accesses``, as one list per field in
        :data:`CHAINED_FIELDS` order: the values bound to :func:`insert_many`."""
        at = clock.now()
        entries = [self._fields(self.scope.organisation_id, a, at) for a in accesses]
        return tuple([e[name] for e in entries] for name in CHAINED_FIELDS)

    def _fields(self, organisation_id: uuid.UUID, access: Access, at: datetime) -> dict[str, Any]:
        scope = self.scope
        return {
            "at": at,
            "organisation_id": organisation_id,
            "actor_user_id": scope.user_id,
            "actor_client_id": scope.client_id,
            "acting_agent": scope.acting_agent,
            "action": access.action,
            "resource_type": access.resource_type,
            "resource_id": access.resource_id,
            "beneficiary_id": access.beneficiary_id,
            "purpose": access.purpose,
            "request_id": scope.request_id,
        }

    async def _act_for(self, organisation_id: uuid.UUID) -> None:
        await self.session.execute(
            select(func.set_config("guichet.organisation_id", str(organisation_id), True))
        )

    async def _append(self, organisation_id: uuid.UUID, accesses: Sequence[Access]) -> None:
        if not accesses:
            return
        at = clock.now()
        entries = [self._fields(organisation_id, a, at) for a in accesses]
        await self.session.execute(_INSERT_UNCHAINED, _insert_parameters(entries))

    async def access_log(
        self, beneficiary_id: uuid.UUID, *, after_id: int | None, limit: int
    ) -> list[tuple[AuditEntry, str]]:
        """Entries about the person (and the records merged into them) by every
        organisation, newest first, each with its organisation's name; ``limit + 1`` at most.
        The caller checks it may read the log first; the database function shows other
        organisations' entries only to an organisation following the person."""
        found = (
            func.person_access_log(beneficiary_id, after_id, limit + 1)
            .table_valued(*(c.name for c in _entry.columns))
            .alias("e")
        )
        entry = aliased(AuditEntry, found, adapt_on_names=True)
        stmt = (
            select(entry, col(Organisation.name))
            .join(Organisation, col(Organisation.id) == entry.organisation_id)
            .order_by(col(entry.id).desc())
        )
        return [(e, name) for e, name in (await self.session.execute(stmt)).all()]

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
    ) -> list[AuditEntry]:
        """The scope's organisation's own entries, newest first, ``from_ <= at < to``;
        ``limit + 1`` at most."""
        stmt = select(AuditEntry).where(
            col(AuditEntry.organisation_id) == self.scope.organisation_id
        )
        if actor_id is not None:
            stmt = stmt.where(
                or_(
                    col(AuditEntry.actor_user_id) == actor_id,
                    col(AuditEntry.actor_client_id) == actor_id,
                )
            )
        if beneficiary_id is not None:
            stmt = stmt.where(col(AuditEntry.beneficiary_id) == beneficiary_id)
        if action is not None:
            stmt = stmt.where(col(AuditEntry.action) == action)
        if from_ is not None:
            stmt = stmt.where(col(AuditEntry.at) >= from_)
        if to is not None:
            stmt = stmt.where(col(AuditEntry.at) < to)
        if after_id is not None:
            stmt = stmt.where(col(AuditEntry.id) < after_id)
        stmt = stmt.order_by(col(AuditEntry.id).desc()).limit(limit + 1)
        return list((await self.session.scalars(stmt)).all())
