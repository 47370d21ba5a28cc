"""``guichet worker``: background work — webhook delivery and periodic jobs.

Runs as the owner role, like migrations: it is an operator process that reads every
organisation's outbox and subscriptions and opens their sealed secrets. A runtime-role
worker would need policies keyed on a GUC the runtime role can set itself, which would
hand any request the worker's reach; the owner role keeps that power out of request code.
It still asks, before every attempt, what the subscriber organisation may see (the same
probe as the change feed, with that organisation set on the transaction).

Several workers may run at once. Deliveries are claimed with ``FOR UPDATE SKIP LOCKED``
and held by a lease while being sent (api.domain.webhooks.repository), so no message is
sent twice by two workers at the same time and a crashed worker's messages come back when
its lease ends. Other periodic jobs are *exclusive*: one worker at a time runs each (a
cluster-wide advisory lock), the others skip that round.

Adding a periodic job is one line in :data:`PERIODIC_JOBS`: a name, an interval and an
async callable taking the :class:`Worker` (``worker.owner()`` gives an owner connection in
a transaction, ``worker.sessions()`` an owner ``AsyncSession``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import signal
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta

import httpx
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from api.db.engine import create_engine, make_sessionmaker, owner_url
from api.domain import clock
from api.domain.changes.repository import Sealer
from api.domain.referrals.service import expire_overdue
from api.domain.webhooks import network
from api.domain.webhooks.repository import (
    Claimed,
    Outcome,
    claim_deliveries,
    job_lock,
    prune_deliveries,
    settle_deliveries,
)
from api.domain.webhooks.rules import (
    Endpoint,
    gives_up,
    message_body,
    parse_endpoint,
    retry_delay,
)
from api.domain.webhooks.service import secret_context
from api.http.idempotency_keys import purge_idempotency_keys
from api.jobs.audit_chain import chain_pending
from api.jobs.purge import purge
from api.settings import Settings

log = logging.getLogger(__name__)

#: how long after their first use idempotency keys are forgotten (api.md: 24 h)
IDEMPOTENCY_RETENTION = timedelta(hours=24)
#: settled deliveries and their attempts are kept this long for the delivery log
DELIVERY_LOG_RETENTION = timedelta(days=30)


class Worker:
    """One worker process's resources: an owner engine, an HTTP client, the sealer."""

    def __init__(
        self,
        settings: Settings,
        *,
        concurrency: int = 8,
        timeout_seconds: float = 10.0,
        engine: AsyncEngine | None = None,
        name: str | None = None,
    ) -> None:
        self.settings = settings
        self.concurrency = concurrency
        self.timeout_seconds = timeout_seconds
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self._own_engine = engine is None
        self.engine = engine or create_engine(
            owner_url(settings), pool_size=concurrency + 2, max_overflow=2
        )
        self.sealer = Sealer.from_settings(settings)
        self.http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_seconds, connect=min(5.0, timeout_seconds)),
            follow_redirects=False,
            trust_env=False,  # no proxy from the environment: we pin the checked address
            limits=httpx.Limits(max_connections=concurrency * 2),
        )
        self.stopping = asyncio.Event()
        #: a lease covers the wait in the queue and the send, with a margin
        self.lease = timedelta(seconds=3 * timeout_seconds + 30)

    async def close(self) -> None:
        await self.http.aclose()
        if self._own_engine:
            await self.engine.dispose()

    @asynccontextmanager
    async def owner(self) -> AsyncIterator[AsyncConnection]:
        """An owner connection in a transaction, committed at the end of the block."""
        async with self.engine.begin() as conn:
            yield conn

    @asynccontextmanager
    async def sessions(self) -> AsyncIterator[AsyncSession]:
        """An owner session (for repositories that take one), committed at the end."""
        async with make_sessionmaker(self.engine)() as session, session.begin():
            yield session

    # ------------------------------------------------------------------ deliveries

    async def claim(self) -> list[Claimed]:
        now = clock.now()
        async with self.owner() as conn:
            claimed, skipped = await claim_deliveries(
                conn, now=now, lease_until=now + self.lease, limit=self.concurrency
            )
        if skipped:
            log.info("webhook deliveries skipped", extra={"count": skipped})
        return claimed

    async def attempt(self, job: Claimed) -> Outcome:
        """Send one claimed message (nothing is written here: see :meth:`settle`)."""
        started = time.monotonic()
        allow_private = self.settings.webhook_allow_private
        endpoint = parse_endpoint(job.url, allow_private=allow_private)
        if not isinstance(endpoint, Endpoint):
            answer = network.Answer(None, "refused: the URL is no longer allowed")
        else:
            try:
                address = await network.resolve(endpoint, allow_private=allow_private)
            except network.UnsafeEndpoint as unsafe:
                answer = network.Answer(None, f"refused: {unsafe.reason}")
            else:
                secret = self.sealer.open(job.secret_cipher, secret_context(job.subscription_id))
                body = message_body(
                    job.event_type, job.event_at, str(job.resource_id), job.resource_status
                )
                headers = network.signed_headers(secret.decode(), job.webhook_id, body, clock.now())
                answer = await network.post(self.http, endpoint, address, body, headers)
        at = clock.now()
        if answer.delivered:
            status, next_at = "delivered", None
        elif gives_up(job.created_at, at):
            status, next_at = "failed", None
        else:
            status = "pending"
            next_at = at + retry_delay(job.attempt, random.uniform(-1, 1))  # noqa: S311
        if status != "delivered":
            log.info(
                "webhook attempt failed",
                extra={"delivery_id": str(job.id), "attempt": job.attempt, "status": status},
            )
        return Outcome(
            job=job,
            at=at,
            status=status,
            status_code=answer.status_code,
            error=answer.error,
            duration_ms=int((time.monotonic() - started) * 1000),
            next_attempt_at=next_at,
        )

    async def settle(self, outcomes: list[Outcome]) -> None:
        async with self.owner() as conn:
            settled = await settle_deliveries(conn, outcomes)
        if settled < len(outcomes):
            # a lease ran out (another worker took the message over) or the subscription
            # was deleted meanwhile
            log.warning("webhook attempts not settled", extra={"count": len(outcomes) - settled})


#: attempts settled in one transaction at most
SETTLE_BATCH = 200


async def deliver_webhooks(worker: Worker) -> int:
    """Send every message due now, ``worker.concurrency`` at a time; the number of
    attempts made. Claims follow the senders (at most two batches are leased ahead), and
    outcomes are settled together as they come (one commit for all that are ready)."""
    claimed: asyncio.Queue[Claimed | None] = asyncio.Queue(maxsize=worker.concurrency)
    settled: asyncio.Queue[Outcome | None] = asyncio.Queue()
    attempts = 0

    async def produce() -> None:
        try:
            while not worker.stopping.is_set():
                batch = await worker.claim()
                if not batch:
                    return
                for job in batch:
                    await claimed.put(job)
        finally:
            for _ in range(worker.concurrency):
                await claimed.put(None)

    async def send() -> None:
        while (job := await claimed.get()) is not None:
            try:
                await settled.put(await worker.attempt(job))
            except Exception:
                # the lease brings the message back; keep draining the queue
                log.exception("webhook attempt crashed", extra={"delivery_id": str(job.id)})

    async def settle() -> None:
        nonlocal attempts
        done = False
        while not done:
            first = await settled.get()
            batch = [] if first is None else [first]
            done = first is None
            while not done and len(batch) < SETTLE_BATCH and not settled.empty():
                item = settled.get_nowait()
                if item is None:
                    done = True
                else:
                    batch.append(item)
            if batch:
                try:
                    await worker.settle(batch)
                    attempts += len(batch)
                except Exception:
                    log.exception("webhook attempts not settled", extra={"count": len(batch)})

    async def senders() -> None:
        try:
            await asyncio.gather(*(send() for _ in range(worker.concurrency)))
        finally:
            await settled.put(None)

    await asyncio.gather(produce(), senders(), settle())
    return attempts


async def purge_keys(worker: Worker) -> int:
    async with worker.owner() as conn:
        return await purge_idempotency_keys(conn, clock.now() - IDEMPOTENCY_RETENTION)


async def prune_delivery_log(worker: Worker) -> int:
    async with worker.owner() as conn:
        return await prune_deliveries(conn, clock.now() - DELIVERY_LOG_RETENTION)


# ------------------------------------------------------------------ periodic jobs


@dataclass(frozen=True)
class PeriodicJob:
    name: str
    interval: timedelta
    run: Callable[[Worker], Awaitable[object]]
    #: one worker at a time (advisory lock); the delivery queue is shared by design instead
    exclusive: bool = True


async def expire_referrals(worker: Worker) -> int:
    """Unanswered referrals past their deadline expire (rows locked SKIP LOCKED)."""
    async with worker.sessions() as session:
        return await expire_overdue(session)


async def chain_audit(worker: Worker) -> int:
    """Chain the audit entries requests wrote since the last round (they take no lock)."""
    async with worker.owner() as conn:
        return await chain_pending(conn)


async def retention_purge(worker: Worker) -> dict[str, object]:
    """The daily retention purge (detach, warn, anonymise, prune the audit trail)."""
    return (await purge(worker.engine.url)).as_dict()


PERIODIC_JOBS: tuple[PeriodicJob, ...] = (
    PeriodicJob("webhooks.deliver", timedelta(seconds=1), deliver_webhooks, exclusive=False),
    # the window in which an entry is not yet under the hash chain (see repositories.audit)
    PeriodicJob("audit.chain", timedelta(seconds=1), chain_audit),
    PeriodicJob("idempotency.purge", timedelta(hours=1), purge_keys),
    PeriodicJob("webhooks.prune", timedelta(hours=6), prune_delivery_log),
    PeriodicJob("referrals.expire", timedelta(minutes=5), expire_referrals),
    PeriodicJob("retention.purge", timedelta(days=1), retention_purge),
)


async def run_job(worker: Worker, job: PeriodicJob) -> object:
    """Run ``job`` once (an exclusive one only if no other worker runs it now)."""
    if not job.exclusive:
        return await job.run(worker)
    async with worker.engine.connect() as conn, job_lock(conn, job.name) as held:
        await conn.commit()  # the session-level lock outlives this transaction
        if not held:
            return None
        return await job.run(worker)


async def _loop(worker: Worker, job: PeriodicJob, poll: timedelta) -> None:
    # the shared queue is polled at the worker's pace; other jobs keep their interval
    interval = job.interval if job.exclusive else poll
    while not worker.stopping.is_set():
        try:
            await run_job(worker, job)
        except Exception:
            log.exception("periodic job failed", extra={"job": job.name})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(worker.stopping.wait(), interval.total_seconds())


async def run(
    settings: Settings,
    *,
    once: bool = False,
    concurrency: int = 8,
    poll_seconds: float = 1.0,
    timeout_seconds: float = 10.0,
    jobs: tuple[PeriodicJob, ...] | None = None,
) -> dict[str, object]:
    """Run every job once (``once``) or until SIGTERM/SIGINT; with ``once``, what each
    job returned."""
    worker = Worker(settings, concurrency=concurrency, timeout_seconds=timeout_seconds)
    selected = jobs if jobs is not None else PERIODIC_JOBS
    results: dict[str, object] = {}
    try:
        if once:
            for job in selected:
                results[job.name] = await run_job(worker, job)
            return results
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, worker.stopping.set)
        log.info("worker started", extra={"worker": worker.name, "jobs": len(selected)})
        poll = timedelta(seconds=poll_seconds)
        await asyncio.gather(*(_loop(worker, job, poll) for job in selected))
        log.info("worker stopped", extra={"worker": worker.name})
        return results
    finally:
        await worker.close()
