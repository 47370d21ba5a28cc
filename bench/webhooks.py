"""Webhook delivery throughput against a local receiver, with a baseline of the same run.

    .venv/bin/python -m bench.webhooks --help

1. creates a throw-away database (bench/http.py), migrates it, and adds one organisation with
   one subscription (``*``) pointing at a receiver on 127.0.0.1;
2. starts the receiver in its own process (uvicorn, one worker): it verifies every message
   with the ``standardwebhooks`` library and counts them;
3. baseline: the same number of signed messages POSTed with raw httpx, ``--concurrency`` at a
   time, to the same receiver (what the transport and the receiver alone allow);
4. queues ``--messages`` changes through ``ChangeLog.record`` (one outbox row each, written by
   the same SQL function as the service), then times the worker draining the queue with
   ``--concurrency`` messages in flight: claim (``FOR UPDATE SKIP LOCKED`` + lease),
   visibility probe, signing, POST, attempt log and settlement, per message;
5. prints messages/s of both and the ratio worker / baseline, and the data size.

The machine is shared and noisy: read the ratio, not the absolute figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert, text

from bench.http import (
    ADMIN_URL,
    HOST,
    RESULTS_DIR,
    ROOT,
    create_database,
    drop_database,
    free_port,
    machine,
    run_cli,
)

# ------------------------------------------------------------------ the receiver process


def receiver_app(secret: str) -> Any:
    """A minimal ASGI endpoint: verify, count, answer 204; ``GET`` returns the counts."""
    from standardwebhooks import Webhook, WebhookVerificationError

    hook = Webhook(secret)
    counts: Counter[str] = Counter()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if scope["method"] == "GET":
            body = json.dumps(counts).encode()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": body})
            return
        chunks = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        try:
            hook.verify(b"".join(chunks), headers)
            counts["verified"] += 1
            status = 204
        except WebhookVerificationError:
            counts["rejected"] += 1
            status = 400
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    return app


def serve_receiver(port: int, secret: str) -> None:
    import uvicorn

    uvicorn.run(
        receiver_app(secret),
        host=HOST,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        ws="none",
    )


class ReceiverProcess:
    def __init__(self, secret: str) -> None:
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.process = subprocess.Popen(  # noqa: S603 (this interpreter, fixed module)
            [sys.executable, "-m", "bench.webhooks", "receiver", str(self.port), secret],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(self.url, timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("the receiver did not start")

    def counts(self) -> dict[str, int]:
        return dict(httpx.get(self.url, timeout=5).json())

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


# ------------------------------------------------------------------ set-up


async def set_up(settings: Any, url: str) -> tuple[uuid.UUID, str]:
    """Migrate, then one organisation with one ``*`` subscription; its id and secret."""
    from api.db.engine import asyncpg_url, owner_connection
    from api.db.migrate import migrate
    from api.db.tables import Organisation, WebhookSubscription
    from api.domain import clock
    from api.domain.changes.repository import Sealer
    from api.domain.webhooks.network import new_secret
    from api.domain.webhooks.service import secret_context

    owner = asyncpg_url(url)
    await migrate(settings, owner)
    now = clock.now()
    organisation = Organisation(
        id=uuid.uuid4(),
        name="Banc d'essai",
        search_name="banc d essai",
        kind="association",
        service_area_communes=[],
        service_area_departements=[],
        created_at=now,
        updated_at=now,
    )
    subscription_id, secret = uuid.uuid4(), new_secret()
    async with owner_connection(owner) as conn:
        await conn.execute(insert(Organisation.__table__).values(**organisation.model_dump()))  # type: ignore[attr-defined]
        await conn.execute(
            insert(WebhookSubscription.__table__).values(  # type: ignore[attr-defined]
                id=subscription_id,
                organisation_id=organisation.id,
                url="",
                events=["*"],
                secret_cipher=Sealer.from_settings(settings).seal(
                    secret.encode(), secret_context(subscription_id)
                ),
                active=True,
                created_at=now,
            )
        )
    return subscription_id, secret


async def point_to(url: str, subscription_id: uuid.UUID, target: str) -> None:
    from api.db.engine import asyncpg_url, owner_connection

    async with owner_connection(asyncpg_url(url)) as conn:
        await conn.execute(
            text("UPDATE webhook_subscription SET url = :u WHERE id = :i"),
            {"u": target, "i": subscription_id},
        )


async def queue(url: str, subscription_id: uuid.UUID, organisation_messages: int) -> int:
    """Queue messages the way the service does; returns the outbox size."""
    from sqlalchemy.ext.asyncio import AsyncSession

    from api.db.engine import asyncpg_url, owner_connection
    from api.domain.changes.repository import ChangeLog

    async with owner_connection(asyncpg_url(url)) as conn:
        org = await conn.scalar(
            text("SELECT organisation_id FROM webhook_subscription WHERE id = :i"),
            {"i": subscription_id},
        )
        log = ChangeLog(AsyncSession(bind=conn))
        for _ in range(organisation_messages):
            # a record the subscriber may see (its own subscription): the probe runs per message
            await log.record(
                type="webhook",
                resource_id=subscription_id,
                action="updated",
                event="webhook.updated",
                audience=[org],
                status="active",
            )
        return int(await conn.scalar(text("SELECT count(*) FROM webhook_delivery")) or 0)


# ------------------------------------------------------------------ measurements


async def baseline(target: str, secret: str, messages: int, concurrency: int) -> float:
    """Signed messages POSTed with raw httpx, ``concurrency`` at a time; seconds."""
    from api.domain import clock
    from api.domain.webhooks.network import signed_headers
    from api.domain.webhooks.rules import message_body

    pending = list(range(messages))

    async def lane(http: httpx.AsyncClient) -> None:
        while pending:
            pending.pop()
            body = message_body("webhook.updated", clock.now(), str(uuid.uuid4()), "active")
            headers = signed_headers(secret, f"msg_{uuid.uuid4().hex}", body, clock.now())
            r = await http.post(
                target, content=body, headers={**headers, "content-type": "application/json"}
            )
            r.raise_for_status()

    async with httpx.AsyncClient(timeout=10) as http:
        started = time.perf_counter()
        await asyncio.gather(*(lane(http) for _ in range(concurrency)))
        return time.perf_counter() - started


async def drain(settings: Any, concurrency: int) -> tuple[float, int]:
    from api.jobs.worker import Worker, deliver_webhooks

    worker = Worker(settings, concurrency=concurrency, timeout_seconds=10)
    try:
        started = time.perf_counter()
        attempts = await deliver_webhooks(worker)
        return time.perf_counter() - started, attempts
    finally:
        await worker.close()


@dataclass
class Figures:
    messages: int
    payload_bytes: int
    outbox_rows: int
    concurrency: int
    baseline_per_s: float
    worker_per_s: float
    ratio: float
    attempts: int
    verified: int
    rejected: int


def run(args: argparse.Namespace) -> int:
    from api.domain import clock
    from api.domain.webhooks.rules import message_body
    from api.settings import Settings

    workdir = Path(tempfile.mkdtemp(prefix="guichet-bench-webhooks-"))
    name, url = (None, args.database_url) if args.database_url else create_database(ADMIN_URL)
    receiver: ReceiverProcess | None = None
    try:
        settings = Settings(
            database_url=url,
            data_dir=workdir,
            webhook_allow_private=True,
            auto_migrate=False,
            log_level="WARNING",
        )
        print("migrating and setting up…", file=sys.stderr)
        subscription_id, secret = asyncio.run(set_up(settings, url))
        receiver = ReceiverProcess(secret)
        target = f"{receiver.url}/hook"
        asyncio.run(point_to(url, subscription_id, target))
        print(f"baseline: {args.messages} raw httpx POSTs", file=sys.stderr)
        asyncio.run(baseline(target, secret, min(200, args.messages), args.concurrency))  # warm-up
        base_s = asyncio.run(baseline(target, secret, args.messages, args.concurrency))
        outbox = asyncio.run(queue(url, subscription_id, args.messages))
        print(f"worker: draining {args.messages} queued messages", file=sys.stderr)
        worker_s, attempts = asyncio.run(drain(settings, args.concurrency))
        counts = receiver.counts()
        payload = len(message_body("webhook.updated", clock.now(), str(uuid.uuid4()), "active"))
        figures = Figures(
            messages=args.messages,
            payload_bytes=payload,
            outbox_rows=outbox,
            concurrency=args.concurrency,
            baseline_per_s=args.messages / base_s,
            worker_per_s=args.messages / worker_s,
            ratio=(args.messages / worker_s) / (args.messages / base_s),
            attempts=attempts,
            verified=counts.get("verified", 0),
            rejected=counts.get("rejected", 0),
        )
    finally:
        if receiver is not None:
            receiver.stop()
        if name is not None:
            drop_database(ADMIN_URL, name)
        shutil.rmtree(workdir, ignore_errors=True)
    report(figures)
    expected = args.messages * 2 + min(200, args.messages)
    return 0 if figures.verified == expected and not figures.rejected else 1


def report(f: Figures) -> None:
    host = machine()
    print()
    print(f"machine: {host['nproc']} CPU ({host['cpu_model']}), Python {host['python']}")
    print(
        f"data: {f.messages} messages of {f.payload_bytes} bytes (id-only body), one "
        f"subscription, outbox {f.outbox_rows} rows; {f.concurrency} in flight"
    )
    print(f"{'':<34}{'messages/s':>12}{'ratio':>8}")
    print(f"{'baseline: raw httpx POST':<34}{f.baseline_per_s:>12.1f}{1:>8.3f}")
    print(f"{'worker: queue → signed delivery':<34}{f.worker_per_s:>12.1f}{f.ratio:>8.3f}")
    print(f"receiver verified {f.verified}, rejected {f.rejected}; worker attempts {f.attempts}")
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS_DIR / f"webhooks-{stamp}.json"
    out.write_text(json.dumps({"machine": host, "figures": asdict(f)}, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.webhooks",
        description="Webhook deliveries per second to a local receiver, as a ratio of raw "
        "httpx POSTs to the same receiver in the same run.",
    )
    parser.add_argument("--messages", type=int, default=1000, help="messages (1000)")
    parser.add_argument("--concurrency", type=int, default=8, help="in flight (8)")
    parser.add_argument(
        "--database-url",
        help="an existing database (owner role; migrated, not dropped). Default: a fresh "
        f"guichet_bench_<random> on {ADMIN_URL}, dropped at the end",
    )
    args = parser.parse_args(argv)
    if args.messages < 1 or args.concurrency < 1:
        parser.error("--messages and --concurrency must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["receiver"]:
        serve_receiver(int(argv[1]), argv[2])
        return 0
    return run_cli(parse_args, run, argv)


if __name__ == "__main__":
    sys.exit(main())
