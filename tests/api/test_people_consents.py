"""Information notices and consents: recorded at any desk of the care team, readable by it
only, withdrawn once with a reason (cancelling the referrals they covered), audited."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.engine import URL

from api.domain import clock
from tests.api.people_support import CONSENT, Headers, create, demo_headers
from tests.world import World


async def test_record_list_and_withdraw_a_consent(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    ccas = as_persona("ccas_rsa_agent")
    pid = await create(client, ccas)
    recorded = await client.post(
        f"/v1/beneficiaries/{pid}/consents",
        json={**CONSENT, "organisation_id": str(world.organisations["departement"])},
        headers=ccas,
    )
    assert recorded.status_code == 201, recorded.text
    consent = recorded.json()
    assert consent["active"] is True and consent["withdrawn_on"] is None
    assert consent["recorded_by_organisation_id"] == str(world.organisations["ccas_amiens"])
    assert consent["recorded_by_user_id"] == str(world.personas["ccas_rsa_agent"].principal_id)
    notice = await client.post(
        f"/v1/beneficiaries/{pid}/consents",
        json={
            "kind": "information",
            "purpose": "Information sur le partage au sein de l'équipe de suivi",
            "method": "ecrit",
            "given_on": clock.today().isoformat(),
        },
        headers=ccas,
    )
    assert notice.status_code == 201, notice.text

    listed = await client.get(f"/v1/beneficiaries/{pid}/consents", headers=ccas)
    assert listed.status_code == 200
    assert {c["id"] for c in listed.json()} == {consent["id"], notice.json()["id"]}

    url = f"/v1/beneficiaries/{pid}/consents/{consent['id']}/withdraw"
    withdrawn = await client.post(url, json={"reason": "ne souhaite plus"}, headers=ccas)
    assert withdrawn.status_code == 200, withdrawn.text
    body = withdrawn.json()
    assert body["active"] is False and body["withdrawn_on"] == clock.today().isoformat()
    assert body["withdrawal_reason"] == "ne souhaite plus"
    assert body["cancelled_referrals"] == []
    again = await client.post(url, json={"reason": "encore"}, headers=ccas)
    assert again.status_code == 409 and again.json()["code"] == "invalid-transition"

    log = await client.get(f"/v1/beneficiaries/{pid}/access-log", headers=ccas)
    actions = [i["action"] for i in log.json()["items"]]
    assert {"consent.create", "consent.withdraw", "consents.read"} <= set(actions)
    withdrawal = next(i for i in log.json()["items"] if i["action"] == "consent.withdraw")
    assert withdrawal["purpose"] == "ne souhaite plus"


async def test_another_organisation_sees_no_consent(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    ccas = as_persona("ccas_rsa_agent")
    pid = await create(client, ccas)
    consent = (
        await client.post(f"/v1/beneficiaries/{pid}/consents", json=CONSENT, headers=ccas)
    ).json()
    for persona in ("departement_agent", "cias_agent", "association_agent", "ccas_agent"):
        headers = as_persona(persona)
        listed = await client.get(f"/v1/beneficiaries/{pid}/consents", headers=headers)
        assert listed.status_code == 404, persona
        recorded = await client.post(
            f"/v1/beneficiaries/{pid}/consents", json=CONSENT, headers=headers
        )
        assert recorded.status_code == 404, persona
        withdrawn = await client.post(
            f"/v1/beneficiaries/{pid}/consents/{consent['id']}/withdraw",
            json={"reason": "x"},
            headers=headers,
        )
        assert withdrawn.status_code == 404, persona
    # a consent id under another person is not found either
    other = await create(client, ccas, birth_name="Autre", birth_date="1970-01-02")
    wrong = await client.post(
        f"/v1/beneficiaries/{other}/consents/{consent['id']}/withdraw",
        json={"reason": "x"},
        headers=ccas,
    )
    assert wrong.status_code == 404


async def test_row_level_security_alone_hides_consents(
    client: httpx.AsyncClient, world: World, as_persona: Headers, app: FastAPI
) -> None:
    """No repository filter: the consent table read bare as each organisation."""
    ccas = as_persona("ccas_rsa_agent")
    pid = await create(client, ccas)
    await client.post(f"/v1/beneficiaries/{pid}/consents", json=CONSENT, headers=ccas)
    async with app.state.sessionmaker() as session:
        for key, expected in (("ccas_amiens", 1), ("departement", 0), ("cias", 0)):
            await session.execute(
                text(
                    "SELECT set_config('guichet.context', 'request', true), "
                    "set_config('guichet.organisation_id', :o, true)"
                ),
                {"o": str(world.organisations[key])},
            )
            count = await session.scalar(
                text("SELECT count(*) FROM consent WHERE beneficiary_id = :p"), {"p": pid}
            )
            assert count == expected, key


async def test_accueil_records_consents_but_pilotage_does_not(
    client: httpx.AsyncClient,
    world: World,
    as_persona: Headers,
    app: FastAPI,
    database_url: URL,
) -> None:
    pid = await create(client, as_persona("ccas_rsa_agent"))
    at_the_desk = await client.post(
        f"/v1/beneficiaries/{pid}/consents", json=CONSENT, headers=as_persona("ccas_accueil")
    )
    assert at_the_desk.status_code == 201, at_the_desk.text
    # the CCAS admin belongs to an attached organisation but reads no personal data
    admin = await demo_headers(app, world, database_url, "ccas_admin")
    refused = await client.post(f"/v1/beneficiaries/{pid}/consents", json=CONSENT, headers=admin)
    assert refused.status_code == 404


async def test_invalid_consents_name_the_field(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    ccas = as_persona("ccas_rsa_agent")
    pid = await create(client, ccas)
    tomorrow = (clock.today() + timedelta(days=1)).isoformat()
    cases = {
        "/given_on": {**CONSENT, "given_on": tomorrow},
        "/organisation_id": {**CONSENT, "competence": None},
        "/competence": {**CONSENT, "competence": "inconnue"},
        "/method": {**CONSENT, "method": "telepathie"},
    }
    for pointer, body in cases.items():
        r = await client.post(f"/v1/beneficiaries/{pid}/consents", json=body, headers=ccas)
        assert r.status_code == 422, (pointer, r.text)
        assert pointer in [e["pointer"] for e in r.json()["errors"]], r.text
    unknown = await client.post(
        f"/v1/beneficiaries/{pid}/consents",
        json={**CONSENT, "organisation_id": str(uuid.uuid4())},
        headers=ccas,
    )
    assert unknown.status_code == 422
    listed = await client.get(f"/v1/beneficiaries/{pid}/consents", headers=ccas)
    assert listed.json() == []


async def test_a_sensitive_consent_needs_the_clearance_and_stays_with_its_organisation(
    client: httpx.AsyncClient,
    world: World,
    as_persona: Headers,
    app: FastAPI,
    database_url: URL,
) -> None:
    pid = await create(client, as_persona("ccas_rsa_agent"))
    cleared = await demo_headers(app, world, database_url, "sensitive_agent")
    joined = await client.post(
        f"/v1/beneficiaries/{pid}/care-team",
        json={"competence": "ase", "justification": "information préoccupante reçue"},
        headers=cleared,
    )
    assert joined.status_code == 201, joined.text
    ase = {**CONSENT, "competence": "ase"}
    recorded = await client.post(f"/v1/beneficiaries/{pid}/consents", json=ase, headers=cleared)
    assert recorded.status_code == 201, recorded.text
    rsa = await client.post(
        f"/v1/beneficiaries/{pid}/care-team",
        json={"competence": "rsa", "justification": "ouverture de droits RSA"},
        headers=as_persona("departement_agent"),
    )
    assert rsa.status_code == 201
    # the same organisation without the clearance, and the CCAS: no trace of it
    for persona in ("departement_agent", "ccas_rsa_agent"):
        listed = await client.get(f"/v1/beneficiaries/{pid}/consents", headers=as_persona(persona))
        assert listed.status_code == 200
        assert listed.json() == [], persona
    uncleared = await client.post(
        f"/v1/beneficiaries/{pid}/consents", json=ase, headers=as_persona("departement_agent")
    )
    assert uncleared.status_code == 403
    mine = await client.get(f"/v1/beneficiaries/{pid}/consents", headers=cleared)
    assert [c["id"] for c in mine.json()] == [recorded.json()["id"]]
