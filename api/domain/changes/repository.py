"""The change feed and the webhook outbox, written in the transaction of the change itself;
the idempotency keys of creating requests; sealing of what the service must read back.

Every capability that changes a shared record calls :meth:`ChangeLog.record` next to its
write: the event row (id-only) and one outbox row per matching webhook subscription are
committed or rolled back with the change, so nothing is announced that did not happen and
nothing that happened goes unannounced.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import (
    BigInteger,
    Row,
    String,
    Uuid,
    and_,
    bindparam,
    cast,
    delete,
    func,
    literal,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from api.auth.scope import Scope
from api.db.tables import ChangeEvent, IdempotencyKey
from api.domain import clock
from api.domain.people.nir import _local_key
from api.settings import Settings

_event = ChangeEvent.__table__  # type: ignore[attr-defined]
_key = IdempotencyKey.__table__  # type: ignore[attr-defined]

AnyRow = Row[tuple[Any, ...]]

_NONCE_BYTES = 12
_LOCK_NOT_AVAILABLE = "55P03"


class Sealer:
    """AES-GCM for values the service must read back but never keep in clear: webhook
    signing secrets, stored idempotent responses (they may hold personal data, a NIR or a
    secret shown once). The key is derived from the NIR master key under its own label;
    ``context`` binds a sealed value to its row, so a ciphertext copied elsewhere does not
    open."""

    def __init__(self, master_key: bytes) -> None:
        self._aead = AESGCM(hmac.digest(master_key, b"guichet:sealed:v1", hashlib.sha256))

    def seal(self, data: bytes, context: str) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, data, context.encode())

    def open(self, blob: bytes, context: str) -> bytes:
        return self._aead.decrypt(blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], context.encode())

    @classmethod
    def from_settings(cls, settings: Settings) -> Sealer:
        if settings.nir_key is not None:
            return cls(base64.b64decode(settings.nir_key.get_secret_value()))
        return cls(_local_key(settings.data_dir / "nir.key"))


class ChangeLog:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def record(
        self,
        *,
        type: str,
        resource_id: uuid.UUID,
        action: str,
        event: str,
        audience: Sequence[uuid.UUID],
        status: str | None = None,
    ) -> None:
        """Announce a change of ``type`` (``referral``, ``orientation``, ``dossier``,
        ``beneficiary``, ``convention``, ``access_request``) to the organisations in
        ``audience`` (the parties at the time of the change; the feed and the webhook
        worker re-check what each may see *now*). ``action`` is the feed's (``created``,
        ``updated``, ``status_changed``, ``deleted``…), ``event`` the webhook type
        (``referral.status_changed``…), ``status`` the new status when there is one."""
        recipients = list(dict.fromkeys(audience))
        await self.session.execute(
            select(
                func.guichet_record_change(
                    type,
                    resource_id,
                    action,
                    event,
                    status,
                    bindparam("audience", recipients, type_=ARRAY(Uuid)),
                    clock.now(),
                )
            )
        )

    async def care_team(self, beneficiary_id: uuid.UUID) -> list[uuid.UUID]:
        """The organisations following the person now, to name the audience of a change
        about them; answered only to one attached to the person or asking for access."""
        found = await self.session.scalar(select(func.guichet_care_team_of(beneficiary_id)))
        return list(found or [])


# Every transaction whose id is below this one has ended (committed or rolled back), so the
# events it wrote are final: nothing can still appear below the horizon. Identity values
# commit out of order (a transaction may take id 10, commit after another's id 11 was
# served, and a cursor on ids alone would skip it forever); the feed therefore orders by
# (transaction id, id) and serves only events below the horizon. The horizon is held back
# by the oldest running writing transaction of the server, which delays the feed by at most
# that transaction's duration and never loses an event.
_HORIZON = cast(cast(func.pg_snapshot_xmin(func.pg_current_snapshot()), String), BigInteger)


class ChangeFeed:
    """The events announced to the scope's organisation that it may see now."""

    def __init__(self, session: AsyncSession, scope: Scope) -> None:
        self.session = session
        self.scope = scope

    async def read(
        self, *, after: tuple[int, int] | None, types: Sequence[str] | None, limit: int
    ) -> tuple[list[AnyRow], int]:
        """Events after ``after`` in feed order, ``limit + 1`` at most, and the horizon
        they were read under. Tombstones (``deleted``) are served to their audience even
        when the record is gone."""
        horizon = int(await self.session.scalar(select(_HORIZON)) or 0)
        org = self.scope.organisation_id
        conditions = [
            _event.c.txid < horizon,
            literal(org, Uuid) == func.any(_event.c.audience),
            or_(
                _event.c.action == "deleted",
                func.guichet_can_see(_event.c.type, _event.c.resource_id),
            ),
        ]
        if after is not None:
            conditions.append(tuple_(_event.c.txid, _event.c.id) > tuple_(*after))
        if types:
            conditions.append(_event.c.type.in_(list(types)))
        stmt = (
            select(_event).where(*conditions).order_by(_event.c.txid, _event.c.id).limit(limit + 1)
        )
        return list((await self.session.execute(stmt)).all()), horizon


class KeyInFlight(Exception):
    """Another request with the same key is still running (its lock outlasted the wait)."""


class IdempotencyKeys:
    """The scope's principal's keys in its organisation (row-level security repeats it)."""

    def __init__(self, session: AsyncSession, scope: Scope, sealer: Sealer) -> None:
        self.session = session
        self.scope = scope
        self.sealer = sealer

    def _this(self, key: str) -> Any:
        return and_(
            _key.c.principal_id == self.scope.principal_id,
            _key.c.organisation_id == self.scope.organisation_id,
            _key.c.key == key,
        )

    async def claim(
        self, key: str, request_hash: str, *, window: timedelta, wait: timedelta
    ) -> AnyRow | None:
        """Take ``key`` for this request in its transaction: ``None`` when it is ours now
        (new, or older than ``window``), else the stored first answer. A request holding
        the key uncommitted makes this wait on the unique index until it ends, ``wait`` at
        most (then :class:`KeyInFlight`); if it rolls back, the key is taken here."""
        now = clock.now()
        previous = await self.session.scalar(select(func.current_setting("lock_timeout")))
        await self.session.execute(
            select(func.set_config("lock_timeout", f"{int(wait.total_seconds() * 1000)}", True))
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
        return (await self.session.execute(select(_key).where(self._this(key)))).one()

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

    def body_of(self, row: AnyRow) -> bytes:
        return self.sealer.open(row.body_cipher, self._context(row.key))


async def purge_idempotency_keys(conn: AsyncConnection, before: datetime) -> int:
    """Owner only: forget keys taken before ``before``."""
    result = await conn.execute(delete(_key).where(_key.c.created_at < before))
    return int(getattr(result, "rowcount", 0) or 0)
