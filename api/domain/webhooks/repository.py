"""Webhook subscriptions (the scope's organisation's own), their delivery log, and the
outbox queue the worker drains as the owner role.

Queue protocol, safe with several workers: a worker *claims* due rows in a short
transaction (``FOR UPDATE SKIP LOCKED``, so two claims never take the same row) and marks
them in flight with a lease (``locked_until``, ``claim_token``) before committing, so no row
lock is held during the HTTP call and rows of a worker that died come back when the lease
ends. It then *settles* the rows it sent (many per transaction), each only if its claim
is still the current one.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Table, delete, func, insert, or_, select, text, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlmodel import col

from api.auth.scope import Scope
from api.db.base import core_table
from api.db.tables import WebhookAttempt, WebhookDelivery, WebhookSubscription

# the worker's queue runs Core statements on the tables (batches, leases, no unit of work)
_subscription: Table = core_table(WebhookSubscription)
_delivery: Table = core_table(WebhookDelivery)
_attempt: Table = core_table(WebhookAttempt)

# first half of the two-key advisory lock of periodic jobs (audit locks use "AUDT")
_JOB_LOCK_NAMESPACE = 0x574F524B  # "WORK"


class WebhookStore:
    """The scope's organisation's subscriptions and their deliveries."""

    def __init__(self, session: AsyncSession, scope: Scope) -> None:
        self.session = session
        self.scope = scope

    def _own(self) -> ColumnElement[bool]:
        return col(WebhookSubscription.organisation_id) == self.scope.organisation_id

    async def add(self, subscription: WebhookSubscription) -> None:
        self.session.add(subscription)
        await self.session.flush()

    async def count(self) -> int:
        stmt = select(func.count()).select_from(WebhookSubscription).where(self._own())
        return int(await self.session.scalar(stmt) or 0)

    async def get(self, subscription_id: uuid.UUID) -> WebhookSubscription | None:
        stmt = select(WebhookSubscription).where(
            self._own(), col(WebhookSubscription.id) == subscription_id
        )
        return (await self.session.scalars(stmt)).first()

    async def page(
        self, *, after: tuple[datetime, uuid.UUID] | None, limit: int
    ) -> list[WebhookSubscription]:
        order = (col(WebhookSubscription.created_at), col(WebhookSubscription.id))
        stmt = select(WebhookSubscription).where(self._own())
        if after is not None:
            stmt = stmt.where(tuple_(*order) > after)
        stmt = stmt.order_by(*order).limit(limit + 1)
        return list((await self.session.scalars(stmt)).all())

    async def remove(self, subscription_id: uuid.UUID) -> bool:
        """Delete the subscription, its queued messages and their log."""
        stmt = (
            delete(WebhookSubscription)
            .where(self._own(), col(WebhookSubscription.id) == subscription_id)
            .returning(col(WebhookSubscription.id))
        )
        return (await self.session.execute(stmt)).first() is not None

    async def enqueue(self, delivery: WebhookDelivery) -> None:
        self.session.add(delivery)
        await self.session.flush()

    async def deliveries(
        self,
        subscription_id: uuid.UUID,
        *,
        status: str | None,
        before: tuple[datetime, uuid.UUID] | None,
        limit: int,
    ) -> list[WebhookDelivery]:
        """Newest first, ``limit + 1`` rows at most."""
        order = (col(WebhookDelivery.created_at), col(WebhookDelivery.id))
        stmt = select(WebhookDelivery).where(
            col(WebhookDelivery.organisation_id) == self.scope.organisation_id,
            col(WebhookDelivery.subscription_id) == subscription_id,
        )
        if status is not None:
            stmt = stmt.where(col(WebhookDelivery.status) == status)
        if before is not None:
            stmt = stmt.where(tuple_(*order) < before)
        stmt = stmt.order_by(*(c.desc() for c in order)).limit(limit + 1)
        return list((await self.session.scalars(stmt)).all())

    async def attempts(self, delivery_ids: Sequence[uuid.UUID]) -> list[WebhookAttempt]:
        if not delivery_ids:
            return []
        stmt = (
            select(WebhookAttempt)
            .where(
                col(WebhookAttempt.organisation_id) == self.scope.organisation_id,
                col(WebhookAttempt.delivery_id).in_(list(delivery_ids)),
            )
            .order_by(
                col(WebhookAttempt.delivery_id), col(WebhookAttempt.attempt), col(WebhookAttempt.id)
            )
        )
        return list((await self.session.scalars(stmt)).all())


async def _relaxed_commit(conn: AsyncConnection) -> None:
    """The queue's own transactions need not wait for the disk (about 5 ms per commit
    here): a claim or a settlement lost in a database crash only makes a message be sent
    again, which at-least-once delivery allows (receivers deduplicate on ``webhook-id``).
    The changes and their outbox rows are written by the service with full durability."""
    await conn.execute(select(func.set_config("synchronous_commit", "off", True)))


@dataclass(frozen=True)
class Claimed:
    """A delivery a worker holds under ``claim_token`` until ``locked_until``."""

    id: uuid.UUID
    claim_token: uuid.UUID
    subscription_id: uuid.UUID
    organisation_id: uuid.UUID
    url: str
    secret_cipher: bytes
    webhook_id: str
    event_type: str
    resource_type: str
    resource_id: uuid.UUID
    resource_status: str | None
    event_at: datetime
    attempt: int
    created_at: datetime


async def claim_deliveries(
    conn: AsyncConnection, *, now: datetime, lease_until: datetime, limit: int
) -> tuple[list[Claimed], int]:
    """Owner only, in the caller's (short) transaction: lease up to ``limit`` due rows,
    skip at once those whose subscriber may no longer see the record (or whose subscription
    is inactive), and return the rows to send and the number skipped. The visibility check
    sets the subscriber organisation on the transaction and asks ``guichet_can_see``, the
    same probe as the change feed; tombstones go to their audience regardless."""
    await _relaxed_commit(conn)
    token = uuid.uuid4()
    due = (
        select(_delivery.c.id)
        .where(
            _delivery.c.status == "pending",
            _delivery.c.next_attempt_at <= now,
            or_(_delivery.c.locked_until.is_(None), _delivery.c.locked_until <= now),
        )
        .order_by(_delivery.c.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .cte("due")
    )
    leased = (
        update(_delivery)
        .where(_delivery.c.id == due.c.id)
        .values(locked_until=lease_until, claim_token=token, attempts=_delivery.c.attempts + 1)
        .returning(_delivery.c.id)
    )
    ids = [r.id for r in (await conn.execute(leased)).all()]
    if not ids:
        return [], 0
    visible = func.guichet_can_see_as(
        _delivery.c.organisation_id, _delivery.c.resource_type, _delivery.c.resource_id
    )
    stmt = (
        select(
            _delivery,
            _subscription.c.url,
            _subscription.c.secret_cipher,
            _subscription.c.active,
            (_delivery.c.tombstone | visible).label("visible"),
        )
        .join(_subscription, _subscription.c.id == _delivery.c.subscription_id)
        .where(_delivery.c.id.in_(ids))
        .order_by(_delivery.c.next_attempt_at)
    )
    rows = (await conn.execute(stmt)).all()
    send = [r for r in rows if r.active and r.visible]
    dropped = [r for r in rows if not (r.active and r.visible)]
    if dropped:
        await conn.execute(
            update(_delivery)
            .where(_delivery.c.id.in_([r.id for r in dropped]))
            .values(
                status="skipped",
                attempts=_delivery.c.attempts - 1,  # nothing was sent
                locked_until=None,
                claim_token=None,
                last_error="the subscriber may no longer see this record",
            )
        )
    claimed = [
        Claimed(
            id=r.id,
            claim_token=token,
            subscription_id=r.subscription_id,
            organisation_id=r.organisation_id,
            url=r.url,
            secret_cipher=r.secret_cipher,
            webhook_id=r.webhook_id,
            event_type=r.event_type,
            resource_type=r.resource_type,
            resource_id=r.resource_id,
            resource_status=r.resource_status,
            event_at=r.event_at,
            attempt=r.attempts,
            created_at=r.created_at,
        )
        for r in send
    ]
    return claimed, len(dropped)


@dataclass(frozen=True)
class Outcome:
    """What one attempt of a claimed message gave, and what becomes of the message."""

    job: Claimed
    at: datetime
    status: str  # delivered | pending (retry at next_attempt_at) | failed
    status_code: int | None
    error: str | None
    duration_ms: int
    next_attempt_at: datetime | None


_SETTLE = text(
    """
    UPDATE webhook_delivery d
    SET status = v.status, locked_until = NULL, claim_token = NULL,
        last_status_code = v.code, last_error = v.error,
        delivered_at = CASE WHEN v.status = 'delivered' THEN v.at ELSE d.delivered_at END,
        next_attempt_at = coalesce(v.next_at, d.next_attempt_at)
    FROM unnest(CAST(:ids AS uuid[]), CAST(:tokens AS uuid[]), CAST(:statuses AS text[]),
                CAST(:codes AS int[]), CAST(:errors AS text[]), CAST(:ats AS timestamptz[]),
                CAST(:nexts AS timestamptz[]))
         AS v(id, token, status, code, error, at, next_at)
    WHERE d.id = v.id AND d.claim_token = v.token
    RETURNING d.id
    """
)


async def settle_deliveries(conn: AsyncConnection, outcomes: Sequence[Outcome]) -> int:
    """Owner only, one transaction for many attempts (one commit, not one per message):
    settle each row whose claim is still the current one and log its attempt; a row whose
    lease ran out and that another worker took over (or that was deleted with its
    subscription) is left alone. The number settled."""
    if not outcomes:
        return 0
    await _relaxed_commit(conn)
    settled = await conn.execute(
        _SETTLE,
        {
            "ids": [o.job.id for o in outcomes],
            "tokens": [o.job.claim_token for o in outcomes],
            "statuses": [o.status for o in outcomes],
            "codes": [o.status_code for o in outcomes],
            "errors": [o.error for o in outcomes],
            "ats": [o.at for o in outcomes],
            "nexts": [o.next_attempt_at for o in outcomes],
        },
    )
    current = {r.id for r in settled.all()}
    # the rows settled are locked until commit: their attempts cannot lose their delivery
    attempts = [
        {
            "delivery_id": o.job.id,
            "organisation_id": o.job.organisation_id,
            "attempt": o.job.attempt,
            "at": o.at,
            "status_code": o.status_code,
            "error": o.error,
            "duration_ms": o.duration_ms,
        }
        for o in outcomes
        if o.job.id in current
    ]
    if attempts:
        await conn.execute(insert(_attempt), attempts)
    return len(current)


async def prune_deliveries(conn: AsyncConnection, before: datetime) -> int:
    """Owner only: forget settled deliveries (and their attempts) created before ``before``."""
    result = await conn.execute(
        delete(_delivery).where(_delivery.c.status != "pending", _delivery.c.created_at < before)
    )
    return int(getattr(result, "rowcount", 0) or 0)


@asynccontextmanager
async def job_lock(conn: AsyncConnection, name: str) -> AsyncIterator[bool]:
    """Hold the cluster-wide lock of periodic job ``name`` on ``conn`` while the body runs;
    yields ``False`` (and holds nothing) when another worker runs the job now."""
    key = (func.hashtext(name),)
    got = bool(await conn.scalar(select(func.pg_try_advisory_lock(_JOB_LOCK_NAMESPACE, *key))))
    try:
        yield got
    finally:
        if got:
            await conn.scalar(select(func.pg_advisory_unlock(_JOB_LOCK_NAMESPACE, *key)))
