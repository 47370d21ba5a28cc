"""Commission sessions over HTTP: agenda, per-item decisions where a bad item does not block
the others, closing, and minutes (HTML and CSV) that name no one."""

from __future__ import annotations

import csv
import io

import httpx
import pytest
from sqlalchemy.engine import URL

from tests.api.aids_support import Headers, add_personas, aid_person, generous_rules, publish, tiers
from tests.api.test_aid_requests import act, open_request
from tests.world import World


@pytest.fixture(autouse=True)
async def _personas(world: World, database_url: URL) -> None:
    await add_personas(world, database_url)


async def scheduled(
    client: httpx.AsyncClient, as_persona: Headers, session: str, amount: str
) -> str:
    person = await aid_person(client, as_persona)
    created = await open_request(client, as_persona, person, amount_asked=amount)
    request = str(created.json()["id"])
    assert (await act(client, as_persona, request, "submit")).status_code == 200
    r = await act(client, as_persona, request, "schedule", body={"session_id": session})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "scheduled"
    return request


async def test_a_session_decides_its_agenda_item_by_item(
    client: httpx.AsyncClient, as_persona: Headers
) -> None:
    await generous_rules(client, as_persona)
    opened = await client.post(
        "/v1/aid-commissions",
        json={"date": "2026-12-10", "body": "commission_permanente"},
        headers=as_persona("ccas_rsa_agent"),
    )
    assert opened.status_code == 201, opened.text
    session = opened.json()["id"]
    first = await scheduled(client, as_persona, session, "120")
    second = await scheduled(client, as_persona, session, "90")
    third = await scheduled(client, as_persona, session, "140")
    agenda = await client.get(
        f"/v1/aid-commissions/{session}", headers=as_persona("ccas_rsa_agent")
    )
    assert {i["request_id"] for i in agenda.json()["agenda"]} == {first, second, third}
    # an agent records nothing for the commission
    items = {"items": [{"request_id": first, "decision": "granted", "amount": "120"}]}
    url = f"/v1/aid-commissions/{session}/decisions"
    assert (
        await client.post(url, json=items, headers=as_persona("ccas_rsa_agent"))
    ).status_code == 403
    report = await client.post(
        url,
        json={
            "items": [
                {"request_id": first, "decision": "granted", "amount": "120"},
                # more than asked: this item fails, the others are recorded
                {"request_id": second, "decision": "granted", "amount": "900"},
                {"request_id": third, "decision": "refused", "reason_code": "autre_dispositif"},
            ]
        },
        headers=as_persona("ccas_decideur"),
    )
    assert report.status_code == 200, report.text
    results = report.json()["results"]
    assert [r["outcome"] for r in results] == ["recorded", "error", "recorded"]
    assert results[1]["problem"]["status"] == 422
    assert results[1]["problem"]["errors"][0]["pointer"] == "/amount"
    read = await client.get(f"/v1/aid-requests/{first}", headers=as_persona("ccas_rsa_agent"))
    assert read.json()["decision_level"] == "commission" and read.json()["status"] == "granted"
    still = await client.get(f"/v1/aid-requests/{second}", headers=as_persona("ccas_rsa_agent"))
    assert still.json()["status"] == "scheduled"

    closed = await client.post(
        f"/v1/aid-commissions/{session}/close", headers=as_persona("ccas_decideur")
    )
    assert closed.status_code == 200 and closed.json()["status"] == "closed"
    late = await client.post(url, json=items, headers=as_persona("ccas_decideur"))
    assert late.status_code == 409

    page = await client.get(
        f"/v1/aid-commissions/{session}/minutes",
        headers={**as_persona("ccas_rsa_agent"), "Accept": "text/html"},
    )
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "Procès-verbal" in page.text and "1 adulte" in page.text
    assert "Aide" not in page.text  # the people's names never appear
    sheet = await client.get(
        f"/v1/aid-commissions/{session}/minutes",
        headers={**as_persona("ccas_rsa_agent"), "Accept": "text/csv"},
    )
    rows = list(csv.DictReader(io.StringIO(sheet.text), delimiter=";"))
    decided = {r["numero"]: (r["decision"], r["montant_accorde"], r["motif"]) for r in rows}
    assert decided[first[:8].upper()] == ("granted", "120.00", "")
    assert decided[third[:8].upper()] == ("refused", "", "autre_dispositif")
    assert "Aide" not in sheet.text


async def test_another_organisation_sees_no_session(
    client: httpx.AsyncClient, as_persona: Headers
) -> None:
    opened = await client.post(
        "/v1/aid-commissions",
        json={"date": "2026-12-10", "body": "conseil_administration"},
        headers=as_persona("ccas_rsa_agent"),
    )
    session = opened.json()["id"]
    for persona in ("ccas_agent", "association_agent"):
        r = await client.get(f"/v1/aid-commissions/{session}", headers=as_persona(persona))
        assert r.status_code == 404
    bad = await client.post(
        "/v1/aid-commissions",
        json={"date": "2026-12-10", "body": "conseil_municipal"},
        headers=as_persona("ccas_rsa_agent"),
    )
    assert bad.status_code == 422


async def test_emergency_grants_are_reported_to_the_next_session(
    client: httpx.AsyncClient, as_persona: Headers
) -> None:
    rules = {
        "title": "Secours d'urgence",
        "valid_from": "2026-06-01",
        "aids": [
            {
                "code": "secours_urgence",
                "label": "Secours d'urgence",
                "competence": "aide_alimentaire",
                "category": "alimentation",
                "forms": ["bon"],
                "max_per_request": 300,
                "decision": tiers(50, 100),
                "emergency_up_to": 200,
            }
        ],
    }
    assert (await publish(client, as_persona, rules, "ccas_admin")).status_code == 201
    person = await aid_person(client, as_persona)
    created = await open_request(
        client, as_persona, person, aid_code="secours_urgence", amount_asked="150"
    )
    request = created.json()["id"]
    submitted = await act(client, as_persona, request, "submit")
    assert submitted.json()["required_level"] == "commission"
    # the decideur grants at once what the commission would decide: an emergency grant
    granted = await act(client, as_persona, request, "grant", "ccas_decideur", {"amount": "150"})
    assert granted.status_code == 200, granted.text
    assert granted.json()["emergency"] is True
    opened = await client.post(
        "/v1/aid-commissions",
        json={"date": "2026-12-31", "body": "commission_permanente"},
        headers=as_persona("ccas_rsa_agent"),
    )
    sheet = await client.get(
        f"/v1/aid-commissions/{opened.json()['id']}/minutes",
        headers={**as_persona("ccas_rsa_agent"), "Accept": "text/csv"},
    )
    rows = list(csv.DictReader(io.StringIO(sheet.text), delimiter=";"))
    reported = [r for r in rows if r["numero"] == request[:8].upper()]
    assert [(r["decision"], r["montant_accorde"]) for r in reported] == [
        ("granted (urgence)", "150.00")
    ]
