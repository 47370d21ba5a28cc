"""Payments over HTTP: partial payments with gap-free voucher numbers, creditor payees,
cancellation, the grantor only, and the CSV export for the accounting software."""

from __future__ import annotations

import csv
import io
import re

import httpx
import pytest
from sqlalchemy.engine import URL

from tests.api.aids_support import Headers, add_personas, aid_person, generous_rules
from tests.api.test_aid_requests import act, open_request
from tests.world import World


@pytest.fixture(autouse=True)
async def _personas(world: World, database_url: URL) -> None:
    await add_personas(world, database_url)


async def granted(
    client: httpx.AsyncClient,
    as_persona: Headers,
    amount: str = "60",
    *,
    persona: str = "ccas_rsa_agent",
    competence: str = "aide_alimentaire",
    **overrides: str,
) -> str:
    await generous_rules(client, as_persona)
    person = await aid_person(client, as_persona, persona=persona, competence=competence)
    created = await open_request(
        client, as_persona, person, persona, amount_asked=amount, **overrides
    )
    assert created.status_code == 201, created.text
    request = str(created.json()["id"])
    assert (await act(client, as_persona, request, "submit", persona)).status_code == 200
    r = await act(client, as_persona, request, "grant", body={"amount": amount})
    assert r.status_code == 200, r.text
    return request


async def pay(
    client: httpx.AsyncClient,
    as_persona: Headers,
    request: str,
    amount: str,
    persona: str = "ccas_rsa_agent",
    **body: object,
) -> httpx.Response:
    return await client.post(
        f"/v1/aid-requests/{request}/payments",
        json={"amount": amount, "form": "bon", "paid_on": "2026-11-20", **body},
        headers=as_persona(persona),
    )


def sequence(number: str) -> int:
    match = re.fullmatch(r"BA-2026-(\d{6})", number)
    assert match, number
    return int(match.group(1))


async def test_partial_payments_take_consecutive_vouchers_and_settle_the_request(
    client: httpx.AsyncClient, as_persona: Headers
) -> None:
    request = await granted(client, as_persona)
    first = await pay(client, as_persona, request, "20")
    assert first.status_code == 201, first.text
    second = await pay(client, as_persona, request, "40")
    assert second.status_code == 201, second.text
    numbers = [sequence(r.json()["voucher_number"]) for r in (first, second)]
    assert numbers[1] == numbers[0] + 1
    read = await client.get(f"/v1/aid-requests/{request}", headers=as_persona("ccas_rsa_agent"))
    assert read.json()["status"] == "paid"
    assert [e["action"] for e in read.json()["events"]][-2:] == ["pay", "pay"]
    third = await pay(client, as_persona, request, "1")
    assert third.status_code == 409 and third.json()["code"] == "invalid-transition"


async def test_no_payment_beyond_the_grant(client: httpx.AsyncClient, as_persona: Headers) -> None:
    request = await granted(client, as_persona)
    r = await pay(client, as_persona, request, "60.01")
    assert r.status_code == 409 and r.json()["errors"][0]["pointer"] == "/amount"
    for bad in ("-1", "0", "abc"):
        assert (await pay(client, as_persona, request, bad)).status_code == 422
    wrong_form = await pay(client, as_persona, request, "10", form="numeraire")
    assert wrong_form.status_code == 422 and wrong_form.json()["errors"][0]["pointer"] == "/form"


async def test_a_creditor_is_paid_without_a_voucher(
    client: httpx.AsyncClient, as_persona: Headers
) -> None:
    request = await granted(
        client,
        as_persona,
        "70",
        competence="aide_facultative",
        aid_code="aide_energie",
        form="paiement_tiers",
    )
    nameless = await pay(
        client, as_persona, request, "70", form="paiement_tiers", payee={"kind": "creditor"}
    )
    assert nameless.status_code == 422
    assert nameless.json()["errors"][0]["pointer"] == "/payee/name"
    creditor = {
        "kind": "creditor",
        "name": "EDF Solidarité",
        "siret": "55208131766522",
        "reference": "FACT-2026-118",
    }
    r = await pay(client, as_persona, request, "70", form="paiement_tiers", payee=creditor)
    assert r.status_code == 201, r.text
    assert r.json()["voucher_number"] is None and r.json()["payee"] == creditor


async def test_cancelling_a_voucher_keeps_its_number(
    client: httpx.AsyncClient, as_persona: Headers
) -> None:
    request = await granted(client, as_persona)
    voucher = (await pay(client, as_persona, request, "20")).json()
    cancelled = await client.post(
        f"/v1/aid-payments/{voucher['id']}/cancel", headers=as_persona("ccas_rsa_agent")
    )
    assert cancelled.status_code == 200 and cancelled.json()["cancelled_at"] is not None
    again = await client.post(
        f"/v1/aid-payments/{voucher['id']}/cancel", headers=as_persona("ccas_rsa_agent")
    )
    assert again.status_code == 409
    # the next voucher takes the next number: a cancelled one is never reissued
    following = (await pay(client, as_persona, request, "40")).json()
    assert sequence(following["voucher_number"]) == sequence(voucher["voucher_number"]) + 1
    # someone else's payment: 404
    other = await client.post(
        f"/v1/aid-payments/{following['id']}/cancel", headers=as_persona("ccas_agent")
    )
    assert other.status_code == 404


async def test_only_the_grantor_pays(client: httpx.AsyncClient, as_persona: Headers) -> None:
    request = await granted(client, as_persona, persona="association_agent")
    # the association instructed it and sees the decision, but the CCAS pays
    assert (await pay(client, as_persona, request, "10", "association_agent")).status_code == 403
    assert (await pay(client, as_persona, request, "10", "ccas_agent")).status_code == 404
    assert (await pay(client, as_persona, request, "10", "org_admin")).status_code == 404


async def test_the_accounting_export(client: httpx.AsyncClient, as_persona: Headers) -> None:
    request = await granted(client, as_persona)
    paid = (await pay(client, as_persona, request, "60")).json()
    listed = await client.get(
        "/v1/aid-payments",
        params={"from": "2026-11-01", "to": "2026-11-30"},
        headers=as_persona("ccas_rsa_agent"),
    )
    assert listed.status_code == 200
    assert paid["id"] in [p["id"] for p in listed.json()["items"]]
    exported = await client.get(
        "/v1/aid-payments",
        params={"from": "2026-11-01", "to": "2026-11-30"},
        headers={**as_persona("ccas_rsa_agent"), "Accept": "text/csv"},
    )
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text), delimiter=";"))
    line = next(r for r in rows if r["payment_id"] == paid["id"])
    assert line["voucher_number"] == paid["voucher_number"]
    assert (line["amount"], line["payee_kind"], line["payee_name"]) == ("60.00", "person", "")
    assert "Aide" not in exported.text  # the person's name never appears
    # another organisation's export holds none of it
    corbie = await client.get("/v1/aid-payments", headers=as_persona("ccas_agent"))
    assert paid["id"] not in [p["id"] for p in corbie.json()["items"]]
    bad = await client.get(
        "/v1/aid-payments",
        params={"from": "2026-11-30", "to": "2026-11-01"},
        headers=as_persona("ccas_rsa_agent"),
    )
    assert bad.status_code == 422
