"""Right of access: the DPO of an organisation in the care team exports everything held
about the person across partners, for a stated purpose; nobody else does, and the DPO
still reads no record otherwise. The DPO also reads the person's access log."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from sqlalchemy.engine import URL

from tests.api.people_support import CONSENT, Headers, create, demo_headers, nir_with_key
from tests.world import World

PURPOSE = "demande de droit d'accès du 12 novembre"


async def _followed_by_both(client: httpx.AsyncClient, as_persona: Headers) -> tuple[str, str]:
    ccas = as_persona("ccas_rsa_agent")
    nir = nir_with_key("2680980021042")
    pid = await create(client, ccas, nir=nir)
    joined = await client.post(
        f"/v1/beneficiaries/{pid}/care-team",
        json={"competence": "rsa", "justification": "ouverture de droits RSA"},
        headers=as_persona("departement_agent"),
    )
    assert joined.status_code == 201
    return pid, nir


async def test_the_dpo_exports_everything_held_about_the_person(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    pid, nir = await _followed_by_both(client, as_persona)
    ccas = as_persona("ccas_rsa_agent")
    private = await client.post(
        f"/v1/beneficiaries/{pid}/notes",
        json={"competence": "aide_facultative", "visibility": "private", "body": "note privée"},
        headers=ccas,
    )
    assert private.status_code == 201
    team_note = await client.post(
        f"/v1/beneficiaries/{pid}/notes",
        json={"competence": "rsa", "visibility": "team", "body": "note d'équipe RSA"},
        headers=as_persona("departement_agent"),
    )
    assert team_note.status_code == 201
    await client.put(
        f"/v1/beneficiaries/{pid}/household",
        json={
            "members": [{"relation": "conjoint", "first_name": "Paul", "birth_date": "1965-01-01"}]
        },
        headers=ccas,
    )
    await client.put(
        f"/v1/beneficiaries/{pid}/budget",
        json={"resources": [{"type": "rsa", "monthly_amount": "635.71"}], "charges": []},
        headers=ccas,
    )
    await client.post(f"/v1/beneficiaries/{pid}/consents", json=CONSENT, headers=ccas)
    await client.post(
        f"/v1/beneficiaries/{pid}/access-requests",
        json={"competence": "aide_facultative", "reason": "demande d'aide au CIAS en cours"},
        headers=as_persona("cias_agent"),
    )

    dpo = as_persona("dpo")  # the département's DPO: the département follows the person
    r = await client.get(
        f"/v1/beneficiaries/{pid}/export", params={"purpose": PURPOSE}, headers=dpo
    )
    assert r.status_code == 200, r.text
    export = r.json()
    assert export["purpose"] == PURPOSE and export["beneficiary_id"] == pid
    assert export["record"]["nir"] == nir
    assert export["record"]["birth_name"] == "Carpentier"
    assert export["record"]["phone"] == "06 11 22 33 44"
    assert [m["first_name"] for m in export["household"]] == ["Paul"]
    assert [b["type"] for b in export["budget"]] == ["rsa"]
    assert {m["competence"] for m in export["care_team"]} == {"aide_facultative", "rsa"}
    # what the département may see, never more: the CCAS agent's private note stays out
    assert [n["body"] for n in export["notes"]] == ["note d'équipe RSA"]
    assert [c["purpose"] for c in export["consents"]] == [CONSENT["purpose"]]
    assert [a["reason"] for a in export["access_requests"]] == ["demande d'aide au CIAS en cours"]
    actions = [i["action"] for i in export["access_log"]]
    assert "beneficiary.create" in actions and "care_team.break_glass" in actions
    # the row of the person refers to no other person: nothing else yet
    assert "nir_cipher" not in str(export) and "nir_hash" not in str(export)

    log = await client.get(
        f"/v1/beneficiaries/{pid}/access-log", headers=as_persona("ccas_rsa_agent")
    )
    exported = [i for i in log.json()["items"] if i["action"] == "beneficiary.export"]
    assert exported and exported[0]["purpose"] == PURPOSE
    assert exported[0]["organisation"]["id"] == str(world.organisations["departement"])


async def test_only_the_dpo_of_the_care_team_exports(
    client: httpx.AsyncClient,
    world: World,
    as_persona: Headers,
    app: FastAPI,
    database_url: URL,
) -> None:
    ccas = as_persona("ccas_rsa_agent")
    pid = await create(client, ccas)
    url = f"/v1/beneficiaries/{pid}/export"
    # the département does not follow this person: its DPO gets a 404
    assert (
        await client.get(url, params={"purpose": PURPOSE}, headers=as_persona("dpo"))
    ).status_code == 404
    # the care team's agent, admin: 403
    for headers in (ccas, as_persona("org_admin")):
        assert (
            await client.get(url, params={"purpose": PURPOSE}, headers=headers)
        ).status_code == 403
    ccas_dpo = await demo_headers(app, world, database_url, "ccas_dpo")
    assert (await client.get(url, headers=ccas_dpo)).status_code == 422
    ok = await client.get(url, params={"purpose": PURPOSE}, headers=ccas_dpo)
    assert ok.status_code == 200
    # the DPO reads no record otherwise
    for suffix in ("", "/notes", "/household", "/consents", "/timeline", "/care-team"):
        r = await client.get(f"/v1/beneficiaries/{pid}{suffix}", headers=ccas_dpo)
        assert r.status_code == 404, suffix


async def test_the_dpo_reads_the_access_log_with_a_purpose(
    client: httpx.AsyncClient,
    world: World,
    as_persona: Headers,
    app: FastAPI,
    database_url: URL,
) -> None:
    pid, _ = await _followed_by_both(client, as_persona)
    url = f"/v1/beneficiaries/{pid}/access-log"
    dpo = as_persona("dpo")
    assert (await client.get(url, headers=dpo)).status_code == 422
    r = await client.get(url, params={"purpose": PURPOSE}, headers=dpo)
    assert r.status_code == 200, r.text
    organisations = {i["organisation"]["id"] for i in r.json()["items"]}
    assert str(world.organisations["ccas_amiens"]) in organisations
    # its reading is itself in the log, with its purpose
    again = await client.get(url, params={"purpose": PURPOSE}, headers=dpo)
    assert ("access_log.read", PURPOSE) in {
        (i["action"], i["purpose"]) for i in again.json()["items"]
    }
    # pilotage belongs to the same organisation, but is no DPO; a foreign DPO sees nothing
    assert (
        await client.get(url, params={"purpose": PURPOSE}, headers=as_persona("pilotage"))
    ).status_code == 404
    other = await create(client, as_persona("cias_agent"), birth_name="Ailleurs")
    assert (
        await client.get(
            f"/v1/beneficiaries/{other}/access-log", params={"purpose": PURPOSE}, headers=dpo
        )
    ).status_code == 404
