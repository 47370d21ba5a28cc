"""Envelopes over HTTP: voted per year under If-Match, always consistent with grants,
payments and cancellations (a property test over random sequences), and a grant beyond the
remaining envelope refused unless a decideur derogates."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import URL

from tests.api.aids_support import VALID_FROM, Headers, add_personas, aid_person, publish, tiers
from tests.api.test_aid_requests import act, open_request
from tests.world import World

YEAR = 2026  # decisions are dated today
URL_YEAR = f"/v1/aid-envelopes/{YEAR}"

RULES = {
    "title": "Secours d'urgence",
    "valid_from": VALID_FROM,
    "aids": [
        {
            "code": "secours_test",
            "label": "Secours d'urgence",
            "competence": "aide_facultative",
            "category": "autre",
            "forms": ["bon", "numeraire"],
            "max_per_request": 5000,
            "decision": tiers(5000, 6000),
        }
    ],
}


@pytest.fixture(autouse=True)
async def _personas(world: World, database_url: URL) -> None:
    await add_personas(world, database_url)


async def envelopes(client: httpx.AsyncClient, as_persona: Headers) -> httpx.Response:
    r = await client.get(URL_YEAR, headers=as_persona("ccas_decideur"))
    assert r.status_code == 200, r.text
    return r


async def vote(
    client: httpx.AsyncClient,
    as_persona: Headers,
    items: list[dict[str, Any]],
    persona: str = "ccas_decideur",
) -> httpx.Response:
    tag = (await envelopes(client, as_persona)).headers["etag"]
    return await client.put(
        URL_YEAR, json={"items": items}, headers={**as_persona(persona), "If-Match": tag}
    )


async def _granted(
    client: httpx.AsyncClient, as_persona: Headers, person: str, amount: int, **grant: Any
) -> httpx.Response:
    created = await open_request(
        client, as_persona, person, aid_code="secours_test", amount_asked=str(amount)
    )
    assert created.status_code == 201, created.text
    request = created.json()["id"]
    assert (await act(client, as_persona, request, "submit")).status_code == 200
    return await act(
        client,
        as_persona,
        request,
        "grant",
        grant.pop("persona", "ccas_rsa_agent"),
        {"amount": str(amount), **grant},
    )


def _figures(r: httpx.Response) -> dict[str, Decimal]:
    item = next(i for i in r.json()["items"] if i["aid_code"] == "secours_test")
    return {k: Decimal(item[k]) for k in ("amount", "granted", "paid", "remaining")}


async def test_voting_needs_the_etag_and_the_role(
    client: httpx.AsyncClient, as_persona: Headers
) -> None:
    items = [{"aid_code": "secours_test", "amount": "1000"}, {"category": "energie", "amount": 500}]
    r = await vote(client, as_persona, items)
    assert r.status_code == 200, r.text
    assert _figures(r) == {
        "amount": Decimal(1000),
        "granted": Decimal(0),
        "paid": Decimal(0),
        "remaining": Decimal(1000),
    }
    stale = await client.put(
        URL_YEAR, json={"items": items}, headers={**as_persona("ccas_decideur"), "If-Match": '"x"'}
    )
    assert stale.status_code == 412
    missing = await client.put(URL_YEAR, json={"items": items}, headers=as_persona("ccas_decideur"))
    assert missing.status_code == 428
    assert (await vote(client, as_persona, items, "org_admin")).status_code == 200
    assert (await vote(client, as_persona, items, "ccas_rsa_agent")).status_code == 403
    both = [{"aid_code": "secours_test", "category": "autre", "amount": 1}]
    bad = await vote(client, as_persona, both)
    assert bad.status_code == 422 and bad.json()["errors"][0]["pointer"] == "/items/0"
    twice = await vote(client, as_persona, [items[0], items[0]])
    assert twice.status_code == 422 and twice.json()["errors"][0]["pointer"] == "/items/1"
    negative = await vote(client, as_persona, [{"aid_code": "secours_test", "amount": -1}])
    assert negative.status_code == 422


async def test_a_grant_beyond_the_envelope_needs_a_derogation(
    client: httpx.AsyncClient, as_persona: Headers
) -> None:
    assert (await publish(client, as_persona, RULES, "ccas_admin")).status_code == 201
    assert (
        await vote(client, as_persona, [{"aid_code": "secours_test", "amount": 100}])
    ).is_success
    person = await aid_person(client, as_persona, competence="aide_facultative")
    assert (await _granted(client, as_persona, person, 80)).status_code == 200
    over = await _granted(client, as_persona, person, 30)
    assert over.status_code == 409, over.text
    assert over.json()["breaches"] == ["envelope"]
    derogated = await _granted(
        client,
        as_persona,
        person,
        30,
        persona="ccas_decideur",
        derogation={"justification": "Sinistre : relogement d'urgence."},
    )
    assert derogated.status_code == 200, derogated.text
    assert _figures(await envelopes(client, as_persona))["remaining"] == Decimal(-10)


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("grant"), st.integers(1, 300)),
        st.tuples(st.just("pay"), st.integers(0, 5), st.integers(1, 120)),
        st.tuples(st.just("cancel"), st.integers(0, 5)),
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
@given(ops=OPS)
async def test_envelopes_follow_any_grant_pay_cancel_sequence(
    ops: list[tuple[Any, ...]], client: httpx.AsyncClient, as_persona: Headers
) -> None:
    # examples share the test's transaction: the first publishes and votes, each then
    # checks the change its own operations make
    published = await publish(client, as_persona, RULES, "ccas_admin")
    assert published.status_code in (201, 422)
    if published.status_code == 201:
        await vote(client, as_persona, [{"aid_code": "secours_test", "amount": 100_000}])
    before = _figures(await envelopes(client, as_persona))
    person = await aid_person(client, as_persona, competence="aide_facultative")
    granted: list[tuple[str, int]] = []  # (request, amount)
    outstanding: dict[str, int] = {}
    live: list[tuple[str, int]] = []  # (payment, amount)
    delta_granted = delta_paid = 0
    for op in ops:
        if op[0] == "grant":
            r = await _granted(client, as_persona, person, op[1])
            assert r.status_code == 200, r.text
            granted.append((r.json()["id"], op[1]))
            outstanding[r.json()["id"]] = op[1]
            delta_granted += op[1]
        elif op[0] == "pay" and granted:
            request, _ = granted[op[1] % len(granted)]
            part = min(op[2], outstanding[request])
            if part == 0:
                continue
            r = await client.post(
                f"/v1/aid-requests/{request}/payments",
                json={"amount": part, "form": "bon", "paid_on": "2026-11-20"},
                headers=as_persona("ccas_rsa_agent"),
            )
            assert r.status_code == 201, r.text
            outstanding[request] -= part
            live.append((r.json()["id"], part))
            delta_paid += part
        elif op[0] == "cancel" and live:
            payment, part = live.pop(op[1] % len(live))
            r = await client.post(
                f"/v1/aid-payments/{payment}/cancel", headers=as_persona("ccas_rsa_agent")
            )
            assert r.status_code == 200, r.text
            delta_paid -= part
            delta_granted -= part
        after = _figures(await envelopes(client, as_persona))
        assert after["granted"] == before["granted"] + delta_granted
        assert after["paid"] == before["paid"] + delta_paid
        assert after["remaining"] == after["amount"] - after["granted"]
        assert Decimal(0) <= after["paid"] <= after["granted"]
