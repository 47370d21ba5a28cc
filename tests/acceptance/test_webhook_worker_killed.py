"""Webhook delivery is at-least-once: a real ``guichet worker`` killed (SIGKILL) in the middle
of its deliveries loses nothing — once its leases end, another worker sends what it left, and
every event reaches the receiver, verified with the Standard Webhooks library. A message the
dead worker had sent but not yet recorded may come twice, with the same ``webhook-id`` and
body: receivers deduplicate on it."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections import defaultdict
from collections.abc import Callable

import httpx
from sqlalchemy import text
from sqlalchemy.engine import URL

from api.db.engine import owner_connection
from api.settings import Settings
from tests.api.feed_support import Receiver, announce
from tests.api.test_webhooks import (  # noqa: F401 (fixtures)
    ROOT,
    hook_settings,
    hooks_client,
    receiver,
    subscribe,
    subscriptions,
)
from tests.world import World

EVENTS = 30


def _worker_env(database_url: URL, settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GUICHET_")}
    env.update(
        DATABASE_URL=database_url.render_as_string(hide_password=False),
        GUICHET_DATA_DIR=str(settings.data_dir),
        GUICHET_WEBHOOK_ALLOW_PRIVATE="1",
        GUICHET_LOG_LEVEL="WARNING",
    )
    return env


async def test_a_worker_killed_mid_delivery_loses_no_event(
    hooks_client: httpx.AsyncClient,  # noqa: F811
    hook_settings: Settings,  # noqa: F811
    database_url: URL,
    world: World,
    as_persona: Callable[[str], dict[str, str]],
    receiver: Receiver,  # noqa: F811
    subscriptions: list[str],  # noqa: F811
) -> None:
    receiver.delay = 0.2  # slow enough for the kill to find messages in flight
    receiver.start()
    hook = await subscribe(
        hooks_client,
        as_persona("org_admin"),
        receiver.url("/killed"),
        ["beneficiary.*"],
        subscriptions,
        receiver,
    )
    await announce(
        database_url,
        resource_id=uuid.uuid4(),
        audience=[world.organisations["ccas_amiens"]],
        action="deleted",  # tombstones: announced whatever the subscriber may see now
        event="beneficiary.deleted",
        count=EVENTS,
    )
    env = _worker_env(database_url, hook_settings)
    command = [sys.executable, "-m", "api.cli", "worker", "--poll", "0.1", "--timeout", "2"]
    worker = subprocess.Popen(  # noqa: ASYNC220 (killed below, never waited on long)
        [*command, "--concurrency", "4"], cwd=ROOT, env=env
    )
    try:
        for _ in range(600):
            if len(receiver.on("/killed")) >= 5:
                break
            await asyncio.sleep(0.05)
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            worker.kill()
    sent_before_kill = len(receiver.on("/killed"))
    assert 5 <= sent_before_kill < EVENTS

    # its leases end (as time would make them): the next worker takes what was left
    async with owner_connection(database_url) as conn:
        await conn.execute(
            text(
                "UPDATE webhook_delivery SET locked_until = now(), next_attempt_at = now() "
                "WHERE subscription_id = :s AND status = 'pending'"
            ),
            {"s": uuid.UUID(hook["id"])},
        )
    receiver.delay = 0
    done = await asyncio.to_thread(
        subprocess.run,
        [*command, "--once"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()

    hits = receiver.on("/killed")
    assert all(h.verified for h in hits)
    payloads = defaultdict(list)
    for h in hits:
        payloads[h.webhook_id].append(h.payload)
    assert len(payloads) == EVENTS  # every event arrived
    assert all(len({str(p) for p in same}) == 1 for same in payloads.values())  # stable ids
    async with owner_connection(database_url) as conn:
        statuses = await conn.execute(
            text(
                "SELECT status, count(*) FROM webhook_delivery WHERE subscription_id = :s "
                "GROUP BY status"
            ),
            {"s": uuid.UUID(hook["id"])},
        )
        assert dict(statuses.all()) == {"delivered": EVENTS}
