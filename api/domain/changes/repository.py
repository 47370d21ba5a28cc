"""The change feed and the webhook outbox, written in the transaction of the change itself;
sealing of what the service must read back (webhook secrets, idempotent answers).

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
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import (
    BigInteger,
    String,
    Uuid,
    bindparam,
    cast,
    func,
    literal,
    or_,
    select,
    tuple_,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from api.auth.scope import Scope
from api.db.tables import ChangeEvent
from api.domain import clock
from api.domain.people.nir import _local_key
from api.settings import Settings

_NONCE_BYTES = 12


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


def record_change(first_parameter: int) -> str:
    """The call recording a change, for a statement that makes the change: its arguments
    bound as ``$first_parameter`` and the next six (the values of
    :meth:`ChangeLog.arguments`). Built once by its caller."""
    p = first_parameter
    return (
        f"guichet_record_change(${p}::text, ${p + 1}::uuid, ${p + 2}::text, ${p + 3}::text,"
        f" ${p + 4}::text, ${p + 5}::uuid[], ${p + 6}::timestamptz)"
    )


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
        values = self.arguments(
            type=type,
            resource_id=resource_id,
            action=action,
            event=event,
            audience=audience,
            status=status,
        )
        await self.session.execute(
            select(
                func.guichet_record_change(
                    *values[:5], bindparam("audience", values[5], type_=ARRAY(Uuid)), values[6]
                )
            )
        )

    @staticmethod
    def arguments(
        *,
        type: str,
        resource_id: uuid.UUID,
        action: str,
        event: str,
        audience: Sequence[uuid.UUID],
        status: str | None = None,
    ) -> tuple[Any, ...]:
        """What :meth:`record` records, as the values bound to :func:`record_change`: the
        audience once each, in order, and the time of the change."""
        return (
            type,
            resource_id,
            action,
            event,
            status,
            list(dict.fromkeys(audience)),
            clock.now(),
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
    ) -> tuple[list[ChangeEvent], int]:
        """Events after ``after`` in feed order, ``limit + 1`` at most, and the horizon
        they were read under. Tombstones (``deleted``) are served to their audience even
        when the record is gone."""
        horizon = int(await self.session.scalar(select(_HORIZON)) or 0)
        org = self.scope.organisation_id
        order = (col(ChangeEvent.txid), col(ChangeEvent.id))
        stmt = select(ChangeEvent).where(
            col(ChangeEvent.txid) < horizon,
            literal(org, Uuid) == func.any(col(ChangeEvent.audience)),
            or_(
                col(ChangeEvent.action) == "deleted",
                func.guichet_can_see(col(ChangeEvent.type), col(ChangeEvent.resource_id)),
            ),
        )
        if after is not None:
            stmt = stmt.where(tuple_(*order) > tuple_(*after))
        if types:
            stmt = stmt.where(col(ChangeEvent.type).in_(list(types)))
        stmt = stmt.order_by(*order).limit(limit + 1)
        return list((await self.session.scalars(stmt)).all()), horizon
