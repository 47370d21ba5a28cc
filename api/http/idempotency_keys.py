"""The stored idempotency keys: taken in the request's transaction, answered once, replayed,
and forgotten after a day by the worker (the protocol: :mod:`api.http.idempotency`)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import asyncpg
from sqlalchemy import ColumnElement, Table, and_, delete, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlmodel import col

from api.auth.scope import Scope
from api.db.base import core_table
from api.db.driver import driver_connection
from api.db.tables import IdempotencyKey
from api.domain import clock
from api.domain.changes.repository import Sealer

_key: Table = core_table(IdempotencyKey)

_LOCK_NOT_AVAILABLE = "55P03"

# The claim in one round trip: the transaction's lock_timeout is set to ``wait`` before the
# upsert (which reads ``wait``, so runs after it) and put back after it (the last SELECT
# projects a row only once the count over ``taken`` has run the upsert to its end). A request
# holding the key uncommitted makes the upsert wait on the unique index, ``wait`` at most.
_CLAIM = (
    "WITH wait AS MATERIALIZED ("
    " SELECT current_setting('lock_timeout') AS previous,"
    " set_config('lock_timeout', $6::text, true) AS waiting"
    "), taken AS ("
    " INSERT INTO idempotency_key (principal_id, organisation_id, key, request_hash,"
    " status_code, headers, body_cipher, created_at)"
    " SELECT $1::uuid, $2::uuid, $3::text, $4::text, NULL, NULL, NULL, $5::timestamptz"
    " FROM wait"
    " ON CONFLICT (principal_id, organisation_id, key) DO UPDATE SET"
    " request_hash = excluded.request_hash, status_code = NULL, headers = NULL,"
    " body_cipher = NULL, created_at = excluded.created_at"
    " WHERE idempotency_key.created_at < $7::timestamptz"
    " RETURNING 1"
    ") SELECT t.n > 0 AS taken, set_config('lock_timeout', w.previous, true)"
    " FROM wait w, (SELECT count(*) AS n FROM taken) t"
)

_SAVE = (
    "UPDATE idempotency_key SET status_code = $4::integer, headers = $5::text::jsonb,"
    " body_cipher = $6::bytea"
    " WHERE principal_id = $1::uuid AND organisation_id = $2::uuid AND key = $3::text"
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
        driver = await driver_connection(self.session)
        try:
            taken = await driver.fetchval(
                _CLAIM,
                self.scope.principal_id,
                self.scope.organisation_id,
                key,
                request_hash,
                now,
                f"{int(wait.total_seconds() * 1000)}",
                now - window,
            )
        except asyncpg.PostgresError as error:
            if error.sqlstate == _LOCK_NOT_AVAILABLE:
                raise KeyInFlight from None
            raise
        if taken:
            return None
        return (await self.session.scalars(select(IdempotencyKey).where(self._this(key)))).one()

    def _context(self, key: str) -> str:
        return f"idempotency:{self.scope.principal_id}:{self.scope.organisation_id}:{key}"

    async def save(self, key: str, status_code: int, headers: dict[str, str], body: bytes) -> None:
        driver = await driver_connection(self.session)
        await driver.execute(
            _SAVE,
            self.scope.principal_id,
            self.scope.organisation_id,
            key,
            status_code,
            json.dumps(headers),
            self.sealer.seal(body, self._context(key)),
        )

    def body_of(self, stored: IdempotencyKey) -> bytes:
        """The stored answer's body (only an answered key is replayed: it has one)."""
        assert stored.body_cipher is not None
        return self.sealer.open(stored.body_cipher, self._context(stored.key))


async def purge_idempotency_keys(conn: AsyncConnection, before: datetime) -> int:
    """Owner only: forget keys taken before ``before``."""
    result = await conn.execute(delete(_key).where(_key.c.created_at < before))
    return int(getattr(result, "rowcount", 0) or 0)
