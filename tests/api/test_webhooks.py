"""Webhooks: subscriptions, SSRF refusals, and delivery by the worker to a real local
receiver that verifies every message with the Standard Webhooks library — retries while it
is down, every message once it is up, nothing about a record the subscriber lost, several
workers on one queue."""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import os
import random
import string
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from api.db.context import DbContext, set_db_context
from api.db.engine import Database, make_sessionmaker, owner_connection
from api.domain import clock
from api.domain.webhooks.network import UnsafeEndpoint, resolve
from api.domain.webhooks.repository import Outcome, claim_deliveries, settle_deliveries
from api.domain.webhooks.rules import parse_endpoint
from api.jobs.worker import Worker, deliver_webhooks, purge_keys
from api.main import create_app
from api.settings import Settings
from tests.api.feed_support import Receiver, announce
from tests.world import World

Headers = Callable[[str], dict[str, str]]
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PUBLIC_URL = "https://93.184.215.14/hooks/guichet"


# ------------------------------------------------------------------ fixtures and helpers


@pytest.fixture
def hook_settings(settings: Settings) -> Settings:
    """Private targets allowed: the receiver listens on 127.0.0.1."""
    return settings.model_copy(update={"webhook_allow_private": True})


@pytest.fixture
async def hooks_client(
    hook_settings: Settings, database_url: URL, app_engine: AsyncEngine
) -> AsyncIterator[httpx.AsyncClient]:
    database = Database(
        owner_url=database_url, app_engine=app_engine, sessionmaker=make_sessionmaker(app_engine)
    )
    transport = httpx.ASGITransport(app=create_app(hook_settings, database=database))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


@pytest.fixture
async def subscriptions(database_url: URL) -> AsyncIterator[list[str]]:
    """Ids of committed subscriptions, deleted (with their queue) after the test."""
    created: list[str] = []
    yield created
    async with owner_connection(database_url) as conn:
        await conn.execute(
            text("DELETE FROM webhook_subscription WHERE id = ANY(:ids)"),
            {"ids": [uuid.UUID(i) for i in created]},
        )


@pytest.fixture
async def worker(hook_settings: Settings) -> AsyncIterator[Worker]:
    w = Worker(hook_settings, concurrency=4, timeout_seconds=3)
    yield w
    await w.close()


async def subscribe(
    c: httpx.AsyncClient,
    headers: dict[str, str],
    url: str,
    events: list[str],
    created: list[str],
    receiver: Receiver | None = None,
) -> dict[str, Any]:
    r = await c.post(
        "/v1/webhooks",
        json={"url": url, "events": events},
        headers={**headers, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    created.append(body["id"])
    if receiver is not None:
        receiver.secrets[url.split(str(receiver.port), 1)[1]] = body["secret"]
    return body


async def deliveries(database_url: URL, subscription_id: str) -> list[Any]:
    async with owner_connection(database_url) as conn:
        rows = await conn.execute(
            text(
                "SELECT d.*, coalesce(array_agg(a.status_code ORDER BY a.attempt) "
                "FILTER (WHERE a.id IS NOT NULL), '{}') AS codes, "
                "coalesce(array_agg(a.error ORDER BY a.attempt) "
                "FILTER (WHERE a.id IS NOT NULL), '{}') AS errors "
                "FROM webhook_delivery d LEFT JOIN webhook_attempt a ON a.delivery_id = d.id "
                "WHERE d.subscription_id = :s GROUP BY d.id ORDER BY d.created_at, d.id"
            ),
            {"s": uuid.UUID(subscription_id)},
        )
        return list(rows.all())


async def time_passes(database_url: URL, subscription_ids: list[str]) -> None:
    """Bring pending retries due now, as if their backoff had elapsed."""
    async with owner_connection(database_url) as conn:
        await conn.execute(
            text(
                "UPDATE webhook_delivery SET next_attempt_at = now() "
                "WHERE status = 'pending' AND subscription_id = ANY(:s)"
            ),
            {"s": [uuid.UUID(i) for i in subscription_ids]},
        )


def _birth_date() -> str:
    return f"19{random.randint(20, 99)}-1{random.randint(0, 2)}-0{random.randint(1, 9)}"


async def new_person(c: httpx.AsyncClient, as_persona: Headers) -> str:
    r = await c.post(
        "/v1/beneficiaries",
        json={
            "competence": "aide_facultative",
            "birth_name": "Crochet" + "".join(random.choices(string.ascii_lowercase, k=10)),
            "first_names": "Rappel",
            "birth_date": _birth_date(),
            "sex": "F",
            "commune": "80021",
        },
        headers=as_persona("ccas_rsa_agent"),
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


# ------------------------------------------------------------------ subscriptions


async def test_subscription_lifecycle_and_sealed_secret(
    client: httpx.AsyncClient, connection: AsyncConnection, world: World, as_persona: Headers
) -> None:
    h = {**as_persona("org_admin"), "Idempotency-Key": str(uuid.uuid4())}
    r = await client.post(
        "/v1/webhooks",
        json={
            "url": PUBLIC_URL,
            "events": ["referral.*", "convention.status_changed", "referral.*"],
            "description": "SI du CCAS",
        },
        headers=h,
    )
    assert r.status_code == 201, r.text
    created = r.json()
    hook = created["id"]
    assert r.headers["location"] == f"/v1/webhooks/{hook}"
    assert created["secret"].startswith("whsec_") and len(created["secret"]) > 40
    assert created["events"] == ["convention.status_changed", "referral.*"]
    admin = as_persona("org_admin")
    listed = await client.get("/v1/webhooks", headers=admin)
    assert [w["id"] for w in listed.json()["items"]] == [hook]
    read = await client.get(f"/v1/webhooks/{hook}", headers=admin)
    assert read.status_code == 200 and "secret" not in read.json()
    # the secret is kept sealed: neither it nor its key material is stored in clear
    session = AsyncSession(bind=connection)
    await set_db_context(
        session, context=DbContext.REQUEST, organisation_id=world.organisations["ccas_amiens"]
    )
    sealed = await session.scalar(
        text("SELECT secret_cipher FROM webhook_subscription WHERE id = :i"), {"i": hook}
    )
    raw = created["secret"].removeprefix("whsec_")
    assert sealed and raw.encode() not in sealed and base64.b64decode(raw) not in sealed

    queued = await client.post(f"/v1/webhooks/{hook}/test", headers=admin)
    assert queued.status_code == 202, queued.text
    log = await client.get(f"/v1/webhooks/{hook}/deliveries", headers=admin)
    [item] = log.json()["items"]
    assert (item["event_type"], item["status"], item["attempts"]) == ("webhook.test", "pending", 0)
    assert item["webhook_id"] == queued.json()["webhook_id"]
    # another organisation's admin cannot tell it exists; an agent of the CCAS may not manage
    assert (
        await client.get(f"/v1/webhooks/{hook}", headers=as_persona("departement_admin"))
    ).status_code == 404
    assert (
        await client.get(f"/v1/webhooks/{hook}", headers=as_persona("ccas_rsa_agent"))
    ).status_code == 403
    gone = await client.delete(f"/v1/webhooks/{hook}", headers=admin)
    assert gone.status_code == 204
    assert (await client.get(f"/v1/webhooks/{hook}", headers=admin)).status_code == 404
    assert (await client.delete(f"/v1/webhooks/{hook}", headers=admin)).status_code == 404


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({"url": PUBLIC_URL, "events": ["referral.sent"]}, "/events/0"),
        ({"url": PUBLIC_URL, "events": ["person.*"]}, "/events/0"),
        ({"url": PUBLIC_URL, "events": []}, "/events"),
        ({"url": "http://93.184.215.14/hook", "events": ["*"]}, "/url"),
        ({"url": "https://user:pw@93.184.215.14/hook", "events": ["*"]}, "/url"),
        ({"url": "https://127.0.0.1/hook", "events": ["*"]}, "/url"),
        ({"url": "https://localhost/hook", "events": ["*"]}, "/url"),
        ({"url": "https://[::1]/hook", "events": ["*"]}, "/url"),
        ({"url": "https://2130706433/hook", "events": ["*"]}, "/url"),
        ({"url": "https://10.1.2.3:8443/hook", "events": ["*"]}, "/url"),
        ({"url": "https://169.254.169.254/latest/meta-data", "events": ["*"]}, "/url"),
        ({"url": "https://[::ffff:192.168.1.1]/hook", "events": ["*"]}, "/url"),
        ({"url": "https://unresolvable.invalid/hook", "events": ["*"]}, "/url"),
        ({"url": "ftp://93.184.215.14/hook", "events": ["*"]}, "/url"),
    ],
)
async def test_unusable_subscriptions_are_refused(
    client: httpx.AsyncClient,
    world: World,
    as_persona: Headers,
    body: dict[str, Any],
    pointer: str,
) -> None:
    r = await client.post("/v1/webhooks", json=body, headers=as_persona("org_admin"))
    assert r.status_code == 422, r.text
    assert pointer in [e["pointer"] for e in r.json()["errors"]]


# ------------------------------------------------------------------ SSRF, property-based

_PRIVATE_V4 = [
    ipaddress.IPv4Network(n)
    for n in (
        "127.0.0.0/8",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "169.254.0.0/16",
        "100.64.0.0/10",
        "0.0.0.0/8",
        "224.0.0.0/4",
    )
]
_PRIVATE_V6 = [ipaddress.IPv6Network(n) for n in ("::1/128", "fc00::/7", "fe80::/10", "ff00::/8")]


def _in(networks: list[Any]) -> st.SearchStrategy[Any]:
    return st.sampled_from(networks).flatmap(
        lambda net: st.integers(0, net.num_addresses - 1).map(lambda i: net[i])
    )


def _v4_forms(a: ipaddress.IPv4Address) -> list[str]:
    n = int(a)
    hi, lo = n >> 16, n & 0xFFFF
    return [
        str(a),
        str(n),  # decimal integer host
        hex(n),  # hex integer host
        ".".join(f"0{o:o}" for o in a.packed),  # octal dotted
        ".".join(hex(o) for o in a.packed),  # hex dotted
        f"[::ffff:{a}]",  # IPv4-mapped IPv6
        f"[::ffff:{hi:x}:{lo:x}]",
        f"[64:ff9b::{a}]",  # NAT64
        f"[2002:{hi:x}:{lo:x}::1]",  # 6to4
    ]


async def _allowed(url: str) -> bool:
    endpoint = parse_endpoint(url, allow_private=False)
    if not hasattr(endpoint, "host"):
        return False
    try:
        await resolve(endpoint, allow_private=False)  # type: ignore[arg-type]
    except UnsafeEndpoint:
        return False
    return True


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    address=_in(_PRIVATE_V4), form=st.integers(0, 8), port=st.sampled_from(["", ":443", ":8080"])
)
async def test_no_form_of_a_private_ipv4_address_is_allowed(
    address: ipaddress.IPv4Address, form: int, port: str
) -> None:
    host = _v4_forms(address)[form]
    assert not await _allowed(f"https://{host}{port}/hook"), host


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(address=_in(_PRIVATE_V6))
async def test_no_private_ipv6_address_is_allowed(address: ipaddress.IPv6Address) -> None:
    assert not await _allowed(f"https://[{address}]/hook"), address


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(n=st.integers(0, 2**32 - 1))
async def test_public_ipv4_addresses_are_allowed(n: int) -> None:
    address = ipaddress.IPv4Address(n)
    public = address.is_global and not address.is_multicast and not address.is_reserved
    assert await _allowed(f"https://{address}/hook") == public, address


# ------------------------------------------------------------------ delivery


async def test_messages_reach_a_real_receiver_signed_and_only_the_audience(
    hooks_client: httpx.AsyncClient,
    database_url: URL,
    world: World,
    as_persona: Headers,
    receiver: Receiver,
    subscriptions: list[str],
    worker: Worker,
) -> None:
    c = hooks_client
    receiver.start()
    ccas = await subscribe(
        c, as_persona("org_admin"), receiver.url("/ccas"), ["*"], subscriptions, receiver
    )
    dep = await subscribe(
        c,
        as_persona("departement_admin"),
        receiver.url("/dep"),
        ["access_request.*"],
        subscriptions,
        receiver,
    )
    await subscribe(
        c, as_persona("ccas_corbie_admin"), receiver.url("/corbie"), ["*"], subscriptions, receiver
    )
    pid = await new_person(c, as_persona)
    asked = await c.post(
        f"/v1/beneficiaries/{pid}/access-requests",
        json={"competence": "rsa", "reason": "instruction RSA"},
        headers=as_persona("departement_agent"),
    )
    assert asked.status_code == 201, asked.text
    proposal = await c.post(
        "/v1/conventions",
        json={
            "reference": f"CONV-HOOK-{uuid.uuid4().hex[:10]}",
            "grantee_id": str(world.organisations["secours_populaire"]),
            "competences": ["aide_facultative"],
            "communes": ["80021"],
            "data_categories": ["identity"],
            "valid_from": "2026-01-01",
        },
        headers=as_persona("org_admin"),
    )
    assert proposal.status_code == 201, proposal.text
    queued = await c.post(f"/v1/webhooks/{ccas['id']}/test", headers=as_persona("org_admin"))
    assert queued.status_code == 202

    assert await deliver_webhooks(worker) == 4
    assert all(h.verified for h in receiver.hits)
    by_type = {h.payload["type"]: h.payload for h in receiver.on("/ccas") if h.payload}
    assert set(by_type) == {"access_request.created", "convention.status_changed", "webhook.test"}
    assert by_type["access_request.created"]["data"] == {
        "id": asked.json()["id"],
        "status": "pending",
    }
    assert by_type["convention.status_changed"]["data"] == {
        "id": proposal.json()["id"],
        "status": "proposed",
    }
    assert by_type["webhook.test"]["data"] == {"id": ccas["id"]}
    assert by_type["webhook.test"]["timestamp"].endswith("Z")
    assert receiver.payload_ids("/dep") == [asked.json()["id"]]
    assert receiver.on("/corbie") == []
    log = await c.get(
        f"/v1/webhooks/{dep['id']}/deliveries", headers=as_persona("departement_admin")
    )
    [item] = log.json()["items"]
    assert (item["status"], item["attempts"], item["last_status_code"]) == ("delivered", 1, 200)
    assert [a["status_code"] for a in item["attempt_log"]] == [200]
    assert item["webhook_id"] == receiver.on("/dep")[0].webhook_id
    # nothing left to send
    assert await deliver_webhooks(worker) == 0


async def test_retries_while_the_receiver_is_down_then_every_message_arrives(
    hooks_client: httpx.AsyncClient,
    database_url: URL,
    world: World,
    as_persona: Headers,
    receiver: Receiver,
    subscriptions: list[str],
    worker: Worker,
) -> None:
    c = hooks_client
    hook = await subscribe(
        c,
        as_persona("org_admin"),
        receiver.url("/ccas"),
        ["beneficiary.*"],
        subscriptions,
        receiver,
    )
    pid = uuid.UUID(await new_person(c, as_persona))
    await announce(
        database_url, resource_id=pid, audience=[world.organisations["ccas_amiens"]], count=5
    )
    # down: nothing listens on the port
    started = clock.now()
    assert await deliver_webhooks(worker) == 5
    rows = await deliveries(database_url, hook["id"])
    assert [(r.status, r.attempts) for r in rows] == [("pending", 1)] * 5
    assert all(r.next_attempt_at >= started + timedelta(seconds=20) for r in rows)
    assert {r.last_error for r in rows} == {"ConnectError"}
    assert await deliver_webhooks(worker) == 0  # the backoff is honoured
    # up but failing once per message, then healthy
    receiver.answer = lambda hit, seen: 500 if seen == 0 else 200
    receiver.start()
    await time_passes(database_url, [hook["id"]])
    assert await deliver_webhooks(worker) == 5
    assert {
        (r.status, r.attempts, r.last_status_code)
        for r in await deliveries(database_url, hook["id"])
    } == {("pending", 2, 500)}
    await time_passes(database_url, [hook["id"]])
    assert await deliver_webhooks(worker) == 5
    rows = await deliveries(database_url, hook["id"])
    assert {(r.status, r.attempts) for r in rows} == {("delivered", 3)}
    for r in rows:
        assert list(r.codes) == [None, 500, 200]
        assert list(r.errors) == ["ConnectError", "HTTP 500", None]
    # every message arrived, verified, under the same webhook-id on each attempt
    hits = receiver.on("/ccas")
    assert all(h.verified for h in hits)
    assert Counter(h.webhook_id for h in hits) == {r.webhook_id: 2 for r in rows}
    assert sorted(receiver.payload_ids("/ccas")) == [str(pid)] * 10


async def test_nothing_is_sent_about_a_record_the_subscriber_may_no_longer_see(
    hooks_client: httpx.AsyncClient,
    database_url: URL,
    world: World,
    as_persona: Headers,
    receiver: Receiver,
    subscriptions: list[str],
    worker: Worker,
) -> None:
    c = hooks_client
    receiver.start()
    ccas = await subscribe(
        c, as_persona("org_admin"), receiver.url("/ccas"), ["*"], subscriptions, receiver
    )
    await subscribe(
        c, as_persona("departement_admin"), receiver.url("/dep"), ["*"], subscriptions, receiver
    )
    pid = await new_person(c, as_persona)
    asked = await c.post(
        f"/v1/beneficiaries/{pid}/access-requests",
        json={"competence": "rsa", "reason": "instruction RSA"},
        headers=as_persona("departement_agent"),
    )
    assert asked.status_code == 201, asked.text
    # before the worker runs, the CCAS leaves the person's care team
    team = (
        await c.get(f"/v1/beneficiaries/{pid}/care-team", headers=as_persona("ccas_rsa_agent"))
    ).json()
    mine = next(
        m["id"] for m in team if m["organisation_id"] == str(world.organisations["ccas_amiens"])
    )
    left = await c.request(
        "DELETE",
        f"/v1/beneficiaries/{pid}/care-team/{mine}",
        json={"reason": "fin de suivi"},
        headers=as_persona("ccas_rsa_agent"),
    )
    assert left.status_code == 204, left.text
    # a tombstone still goes to its audience
    await announce(
        database_url,
        resource_id=uuid.UUID(pid),
        audience=[world.organisations["ccas_amiens"]],
        action="deleted",
        event="beneficiary.deleted",
    )
    await deliver_webhooks(worker)
    assert receiver.payload_ids("/dep") == [asked.json()["id"]]
    assert receiver.payload_ids("/ccas") == [pid]
    rows = await deliveries(database_url, ccas["id"])
    skipped = [r for r in rows if r.resource_type == "access_request"]
    assert [(r.status, r.attempts, list(r.codes)) for r in skipped] == [("skipped", 0, [])]


async def test_two_workers_never_send_one_message_twice(
    hooks_client: httpx.AsyncClient,
    hook_settings: Settings,
    database_url: URL,
    world: World,
    as_persona: Headers,
    receiver: Receiver,
    subscriptions: list[str],
) -> None:
    c = hooks_client
    receiver.delay = 0.01
    receiver.start()
    hook = await subscribe(
        c,
        as_persona("org_admin"),
        receiver.url("/ccas"),
        ["beneficiary.*"],
        subscriptions,
        receiver,
    )
    org = world.organisations["ccas_amiens"]
    await announce(
        database_url,
        resource_id=uuid.uuid4(),
        audience=[org],
        action="deleted",
        event="beneficiary.deleted",
        count=80,
    )
    first = Worker(hook_settings, concurrency=4, timeout_seconds=3, name="first")
    second = Worker(hook_settings, concurrency=4, timeout_seconds=3, name="second")
    try:
        sent = await asyncio.gather(deliver_webhooks(first), deliver_webhooks(second))
    finally:
        await first.close()
        await second.close()
    assert sum(sent) == 80 and min(sent) > 0, sent
    hits = receiver.on("/ccas")
    assert len(hits) == 80 and all(h.verified for h in hits)
    assert len({h.webhook_id for h in hits}) == 80  # each message once
    rows = await deliveries(database_url, hook["id"])
    assert {(r.status, r.attempts) for r in rows} == {("delivered", 1)}


async def test_a_crashed_workers_messages_come_back_when_its_lease_ends(
    hooks_client: httpx.AsyncClient,
    database_url: URL,
    world: World,
    as_persona: Headers,
    receiver: Receiver,
    subscriptions: list[str],
    worker: Worker,
) -> None:
    c = hooks_client
    receiver.start()
    hook = await subscribe(
        c,
        as_persona("org_admin"),
        receiver.url("/ccas"),
        ["beneficiary.*"],
        subscriptions,
        receiver,
    )
    await announce(
        database_url,
        resource_id=uuid.uuid4(),
        audience=[world.organisations["ccas_amiens"]],
        action="deleted",
        event="beneficiary.deleted",
        count=3,
    )
    # a worker claims the messages, then dies before sending
    now = clock.now()
    async with owner_connection(database_url) as conn:
        claimed, _ = await claim_deliveries(
            conn, now=now, lease_until=now + timedelta(seconds=1), limit=100
        )
    assert len([j for j in claimed if str(j.subscription_id) == hook["id"]]) == 3
    assert await deliver_webhooks(worker) == 0  # leased: nobody else takes them
    await asyncio.sleep(1.2)
    assert await deliver_webhooks(worker) == 3
    rows = await deliveries(database_url, hook["id"])
    assert {(r.status, r.attempts) for r in rows} == {("delivered", 2)}
    assert len(receiver.on("/ccas")) == 3
    # the first worker comes back to life and reports: its claim is no longer current
    stale = [j for j in claimed if str(j.subscription_id) == hook["id"]]
    async with owner_connection(database_url) as conn:
        await settle_deliveries(
            conn,
            [Outcome(j, clock.now(), "failed", None, "timeout", 10_000, None) for j in stale],
        )
    rows = await deliveries(database_url, hook["id"])
    assert {(r.status, r.attempts, r.last_status_code) for r in rows} == {("delivered", 2, 200)}


async def test_guichet_worker_once_delivers_and_purges_old_keys(
    hooks_client: httpx.AsyncClient,
    hook_settings: Settings,
    database_url: URL,
    world: World,
    as_persona: Headers,
    receiver: Receiver,
    subscriptions: list[str],
) -> None:
    c = hooks_client
    receiver.start()
    hook = await subscribe(
        c, as_persona("org_admin"), receiver.url("/ccas"), ["*"], subscriptions, receiver
    )
    assert (
        await c.post(f"/v1/webhooks/{hook['id']}/test", headers=as_persona("org_admin"))
    ).status_code == 202
    persona = world.personas["org_admin"]
    async with owner_connection(database_url) as conn:
        await conn.execute(
            text(
                "INSERT INTO idempotency_key (principal_id, organisation_id, key, request_hash, "
                "created_at) VALUES (:p, :o, :k, 'x', now() - interval '25 hours')"
            ),
            {"p": persona.principal_id, "o": persona.organisation_id, "k": "old-key"},
        )
    env = {k: v for k, v in os.environ.items() if not k.startswith("GUICHET_")}
    env.update(
        DATABASE_URL=database_url.render_as_string(hide_password=False),
        GUICHET_DATA_DIR=str(hook_settings.data_dir),
        GUICHET_WEBHOOK_ALLOW_PRIVATE="1",
        GUICHET_LOG_LEVEL="WARNING",
    )
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "api.cli", "worker", "--once", "--concurrency", "2"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()
    [hit] = receiver.on("/ccas")
    assert hit.verified and hit.payload and hit.payload["type"] == "webhook.test"
    async with owner_connection(database_url) as conn:
        left = await conn.scalar(text("SELECT count(*) FROM idempotency_key WHERE key = 'old-key'"))
    assert left == 0


async def test_purging_keeps_fresh_keys(
    hook_settings: Settings, database_url: URL, world: World, worker: Worker
) -> None:
    persona = world.personas["ccas_rsa_agent"]
    async with owner_connection(database_url) as conn:
        for k, age in (("fresh-key", timedelta(hours=1)), ("stale-key", timedelta(hours=25))):
            await conn.execute(
                text(
                    "INSERT INTO idempotency_key (principal_id, organisation_id, key, "
                    "request_hash, created_at) VALUES (:p, :o, :k, 'x', :at)"
                ),
                {
                    "p": persona.principal_id,
                    "o": persona.organisation_id,
                    "k": k,
                    "at": clock.now() - age,
                },
            )
    assert await purge_keys(worker) >= 1
    async with owner_connection(database_url) as conn:
        kept = await conn.scalars(
            text("SELECT key FROM idempotency_key WHERE key IN ('fresh-key', 'stale-key')")
        )
        assert list(kept) == ["fresh-key"]


async def test_a_subscription_deleted_during_a_send_does_not_upset_the_others(
    hooks_client: httpx.AsyncClient,
    database_url: URL,
    world: World,
    as_persona: Headers,
    receiver: Receiver,
    subscriptions: list[str],
) -> None:
    c = hooks_client
    kept = await subscribe(
        c, as_persona("org_admin"), receiver.url("/kept"), ["beneficiary.*"], subscriptions
    )
    dropped = await subscribe(
        c, as_persona("org_admin"), receiver.url("/dropped"), ["beneficiary.*"], subscriptions
    )
    await announce(
        database_url,
        resource_id=uuid.uuid4(),
        audience=[world.organisations["ccas_amiens"]],
        action="deleted",
        event="beneficiary.deleted",
    )
    now = clock.now()
    async with owner_connection(database_url) as conn:
        claimed, _ = await claim_deliveries(
            conn, now=now, lease_until=now + timedelta(minutes=1), limit=100
        )
    mine = [j for j in claimed if str(j.subscription_id) in (kept["id"], dropped["id"])]
    assert len(mine) == 2
    gone = await c.delete(f"/v1/webhooks/{dropped['id']}", headers=as_persona("org_admin"))
    assert gone.status_code == 204
    async with owner_connection(database_url) as conn:
        settled = await settle_deliveries(
            conn, [Outcome(j, clock.now(), "delivered", 200, None, 5, None) for j in mine]
        )
    assert settled == 1
    [row] = await deliveries(database_url, kept["id"])
    assert (row.status, row.attempts, list(row.codes)) == ("delivered", 1, [200])
    assert await deliveries(database_url, dropped["id"]) == []
