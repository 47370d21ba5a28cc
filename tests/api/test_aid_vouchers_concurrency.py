"""Voucher numbers under concurrency, over real HTTP: 200 vouchers issued by 20 concurrent
clients of one grantor are numbered 1 to 200 — no gap, no duplicate (a counter row per
grantor and year, incremented with UPDATE … RETURNING inside each payment's transaction)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date, timedelta

import httpx
from sqlalchemy import text
from sqlalchemy.engine import URL

from api.db.engine import owner_connection
from tests.api.aids_support import Headers, add_personas, tiers
from tests.world import World

CLIENTS = 20
VOUCHERS_EACH = 10
# a voucher year of its own: nothing else in the run pays in it
PAID_ON = "2031-01-15"

RULES = {
    "title": "Règlement de test des bons",
    "valid_from": "2025-03-01",
    "aids": [
        {
            "code": "bon_concurrence",
            "label": "Bon (test de concurrence)",
            "competence": "aide_alimentaire",
            "category": "alimentation",
            "forms": ["bon"],
            "max_per_request": 1000,
            "decision": tiers(1000, 2000),
        }
    ],
}


async def _granted_request(http: httpx.AsyncClient, agent: dict[str, str]) -> str:
    tag = uuid.uuid4().hex[:10]
    person = await http.post(
        "/v1/beneficiaries",
        json={
            "competence": "aide_alimentaire",
            "birth_name": "Bon",
            "first_names": f"C{tag}",
            "birth_date": (date(1950, 1, 1) + timedelta(days=int(tag, 16) % 20_000)).isoformat(),
            "sex": "M",
            "commune": "80212",
        },
        headers=agent,
    )
    assert person.status_code == 201, person.text
    pid = person.json()["id"]
    budget = {"resources": [], "charges": []}
    assert (
        await http.put(f"/v1/beneficiaries/{pid}/budget", json=budget, headers=agent)
    ).is_success
    created = await http.post(
        "/v1/aid-requests",
        json={
            "beneficiary_id": pid,
            "aid_code": "bon_concurrence",
            "amount_asked": VOUCHERS_EACH,
            "form": "bon",
            "reason": "test",
        },
        headers={**agent, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert created.status_code == 201, created.text
    request = created.json()["id"]
    for action, body in (("submit", {}), ("grant", {"amount": VOUCHERS_EACH})):
        r = await http.post(f"/v1/aid-requests/{request}/{action}", json=body, headers=agent)
        assert r.status_code == 200, r.text
    return str(request)


async def _pay_all(http: httpx.AsyncClient, agent: dict[str, str], request: str) -> list[str]:
    numbers = []
    for _ in range(VOUCHERS_EACH):
        r = await http.post(
            f"/v1/aid-requests/{request}/payments",
            json={"amount": 1, "form": "bon", "paid_on": PAID_ON},
            headers={**agent, "Idempotency-Key": str(uuid.uuid4())},
        )
        assert r.status_code == 201, r.text
        numbers.append(r.json()["voucher_number"])
    return numbers


async def test_two_hundred_vouchers_from_twenty_clients_have_no_gap(
    live_server: str, database_url: URL, world: World, as_persona: Headers
) -> None:
    await add_personas(world, database_url)
    agent = as_persona("ccas_agent")  # the CCAS de Corbie
    async with httpx.AsyncClient(base_url=live_server, timeout=120) as http:
        published = await http.post(
            "/v1/aid-rules",
            json=RULES,
            headers={**as_persona("corbie_admin"), "Idempotency-Key": str(uuid.uuid4())},
        )
        assert published.status_code == 201, published.text
        requests = [await _granted_request(http, agent) for _ in range(CLIENTS)]
    try:
        await _issue_and_check(live_server, database_url, world, agent, requests)
    finally:
        await _forget(database_url, uuid.UUID(published.json()["id"]), requests)


async def _forget(database_url: URL, rules: uuid.UUID, requests: list[str]) -> None:
    """What this test committed leaves no trace the other tests of the run could count: the
    règlement it published for the CCAS de Corbie, its aids, their payments, and the
    statistical rows of the people and aids (the people themselves stay, unattached to any
    figure), and the voucher year of its own."""
    ids = [uuid.UUID(r) for r in requests]
    async with owner_connection(database_url) as conn:
        people = list(
            await conn.scalars(
                text("SELECT beneficiary_id FROM aid_request WHERE id = ANY(:ids)"), {"ids": ids}
            )
        )
        for statement in (
            "DELETE FROM aid_payment WHERE request_id = ANY(:ids)",
            "DELETE FROM aid_request_event WHERE request_id = ANY(:ids)",
            "DELETE FROM aid_request WHERE id = ANY(:ids)",
            "DELETE FROM aid_type WHERE rules_id = :rules",
            "DELETE FROM aid_rules WHERE id = :rules",
            "DELETE FROM stat_fact WHERE source_id = ANY(:ids) OR source_id = ANY(:people)",
            "DELETE FROM aid_voucher_counter WHERE year = 2031",
        ):
            await conn.execute(text(statement), {"ids": ids, "rules": rules, "people": people})


async def _issue_and_check(
    live_server: str, database_url: URL, world: World, agent: dict[str, str], requests: list[str]
) -> None:
    async def client(request: str) -> list[str]:
        async with httpx.AsyncClient(base_url=live_server, timeout=120) as own:
            return await _pay_all(own, agent, request)

    issued = [n for batch in await asyncio.gather(*(client(r) for r in requests)) for n in batch]
    assert len(issued) == CLIENTS * VOUCHERS_EACH
    assert sorted(issued) == [f"BA-2031-{i:06d}" for i in range(1, CLIENTS * VOUCHERS_EACH + 1)]
    async with owner_connection(database_url) as conn:
        last = await conn.scalar(
            text(
                "SELECT last_number FROM aid_voucher_counter "
                "WHERE organisation_id = :o AND year = 2031"
            ),
            {"o": world.organisations["ccas_corbie"]},
        )
        paid = await conn.scalar(
            text("SELECT count(*) FROM aid_request WHERE id = ANY(:ids) AND status = 'paid'"),
            {"ids": [uuid.UUID(r) for r in requests]},
        )
    assert last == CLIENTS * VOUCHERS_EACH
    assert paid == CLIENTS
