"""The stored idempotency keys: taken in the request's transaction, answered once, replayed,
and forgotten after a day by the worker (the protocol: :mod:`api.http.idempotency`)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Table, and_, delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlmodel import col

from api.auth.scope import Scope
from api.db.base import core_table
from api.db.tables import IdempotencyKey
from api.domain import clock
from api.domain.changes.repository import Sealer

# the claim is one upsert on the key's unique index, in Core
_key: Table = core_table(IdempotencyKey)

_LOCK_NOT_AVAILABLE = "55P03"

# The claim waits on another request's uncommitted key at most ``wait``: the transaction's
# lock_timeout is set for it and put back after, read and set in one round trip (the
# subquery, kept apart by OFFSET 0, yields the value before the outer SELECT changes it)
_WAIT_AT_MOST = text(
    "SELECT p.previous, set_config('lock_timeout', :ms, true)"
    " FROM (SELECT current_setting('lock_timeout') AS previous OFFSET 0) AS p"
)


class KeyInFlight(Exception):
    """Another request with the same key is still running (its lock outlasted the wait)."""


class IdempotencyKeys:
    """The scope's principal's keys in its organisation (row-level security repeats it)."""

    def __init__(self, session: AsyncSession, scope: Scope, sealer: Sealer) -> None:
        self.session = session
        self.scope = scope
        self.sealer = sealer

    def _this(self, key: str) -> ColumnElement[bool]:
        return and_(
            col(IdempotencyKey.principal_id) == self.scope.principal_id,
            col(IdempotencyKey.organisation_id) == self.scope.organisation_id,
            col(IdempotencyKey.key) == key,
        )

    async def claim(
        self, key: str, request_hash: str, *, window: timedelta, wait: timedelta
    ) -> IdempotencyKey | None:
        """Take ``key`` for this request in its transaction: ``None`` when it is ours now
        (new, or older than ``window``), else the stored first answer. A request holding
        the key uncommitted makes this wait on the unique index until it ends, ``wait`` at
        most (then :class:`KeyInFlight`); if it rolls back, the key is taken here."""
        now = clock.now()
        previous = await self.session.scalar(
            _WAIT_AT_MOST, {"ms": f"{int(wait.total_seconds() * 1000)}"}
        )
        fresh = {
            "request_hash": request_hash,
            "status_code": None,
            "headers": None,
            "body_cipher": None,
            "created_at": now,
        }
        stmt = (
            insert(_key)
            .values(
                principal_id=self.scope.principal_id,
                organisation_id=self.scope.organisation_id,
                key=key,
                **fresh,
            )
            .on_conflict_do_update(
                index_elements=[_key.c.principal_id, _key.c.organisation_id, _key.c.key],
                set_=fresh,
                where=_key.c.created_at < now - window,
            )
            .returning(_key.c.key)
        )
        try:
            taken = (await self.session.execute(stmt)).first()
        except DBAPIError as error:
            if getattr(error.orig, "sqlstate", None) == _LOCK_NOT_AVAILABLE:
                raise KeyInFlight from None
            raise
        await self.session.execute(select(func.set_config("lock_timeout", previous, True)))
        if taken is not None:
            return None
        return (await self.session.scalars(select(IdempotencyKey).where(self._this(key)))).one()

    def _context(self, key: str) -> str:
        return f"idempotency:{self.scope.principal_id}:{self.scope.organisation_id}:{key}"

    async def save(self, key: str, status_code: int, headers: dict[str, str], body: bytes) -> None:
        await self.session.execute(
            update(_key)
            .where(self._this(key))
            .values(
                status_code=status_code,
                headers=headers,
                body_cipher=self.sealer.seal(body, self._context(key)),
            )
        )

    def body_of(self, stored: IdempotencyKey) -> bytes:
        """The stored answer's body (only an answered key is replayed: it has one)."""
        assert stored.body_cipher is not None
        return self.sealer.open(stored.body_cipher, self._context(stored.key))


async def purge_idempotency_keys(conn: AsyncConnection, before: datetime) -> int:
    """Owner only: forget keys taken before ``before``."""
    result = await conn.execute(delete(_key).where(_key.c.created_at < before))
    return int(getattr(result, "rowcount", 0) or 0)
