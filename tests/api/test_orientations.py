"""Orientations: the directory resolves the target, the target joins the care team when it
accepts, and a new accepted orientation ends the previous one (réorientation)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from tests.api.test_people import create
from tests.world import World

Headers = Callable[[str], dict[str, str]]


async def rsa_person(client: httpx.AsyncClient, as_persona: Headers, **overrides: Any) -> str:
    r = await create(client, as_persona, persona="departement_agent", competence="rsa", **overrides)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def orient(
    client: httpx.AsyncClient, as_persona: Headers, pid: str, **overrides: Any
) -> httpx.Response:
    body: dict[str, Any] = {
        "beneficiary_id": pid,
        "competence": "rsa",
        "category": "sociale",
        "reason": "Accompagnement social de proximité.",
    }
    body.update(overrides)
    return await client.post("/v1/orientations", json=body, headers=as_persona("departement_agent"))


async def act(
    client: httpx.AsyncClient, as_persona: Headers, persona: str, oid: str, action: str, **body: Any
) -> httpx.Response:
    return await client.post(
        f"/v1/orientations/{oid}/{action}", json=body, headers=as_persona(persona)
    )


async def test_target_resolved_from_directory_delegate_first_then_joins_on_accept(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    pid = await rsa_person(client, as_persona)
    r = await orient(client, as_persona, pid)
    assert r.status_code == 201, r.text
    orientation = r.json()
    # the CCAS d'Amiens holds rsa on Amiens by convention: delegates come first
    assert orientation["target"]["id"] == str(world.organisations["ccas_amiens"])
    assert orientation["status"] == "proposed"
    # proposed: the target sees identity, contact and situation to decide
    seen = await client.get(f"/v1/beneficiaries/{pid}", headers=as_persona("ccas_rsa_agent"))
    assert seen.json()["categories"] == ["contact", "identity", "situation"]
    inbox = await client.get("/v1/orientations?box=inbox", headers=as_persona("ccas_rsa_agent"))
    assert orientation["id"] in [o["id"] for o in inbox.json()["items"]]

    accepted = await act(client, as_persona, "ccas_rsa_agent", orientation["id"], "accept")
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "accepted"
    after = await client.get(f"/v1/beneficiaries/{pid}", headers=as_persona("ccas_rsa_agent"))
    assert "household" in after.json()["categories"]  # the convention's categories now
    team = await client.get(
        f"/v1/beneficiaries/{pid}/care-team", headers=as_persona("ccas_rsa_agent")
    )
    ccas = [
        m
        for m in team.json()
        if m["organisation_id"] == str(world.organisations["ccas_amiens"]) and not m["ended_at"]
    ]
    assert [m["competence"] for m in ccas] == ["rsa"]


async def test_sides_codes_and_terminal_states(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    pid = await rsa_person(client, as_persona)
    oid = (await orient(client, as_persona, pid)).json()["id"]
    r = await act(client, as_persona, "departement_agent", oid, "accept")
    assert r.status_code == 403
    r = await act(client, as_persona, "ccas_rsa_agent", oid, "cancel")
    assert r.status_code == 403
    r = await act(client, as_persona, "ccas_rsa_agent", oid, "end", comment="x")
    assert r.status_code == 409 and r.json()["allowed_actions"] == ["accept", "refuse"]
    r = await act(client, as_persona, "ccas_rsa_agent", oid, "refuse")
    assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == "/reason_code"
    r = await act(client, as_persona, "ccas_rsa_agent", oid, "refuse", reason_code="non_eligible")
    assert r.status_code == 200 and r.json()["status"] == "refused"
    gone = await client.get(f"/v1/beneficiaries/{pid}", headers=as_persona("ccas_rsa_agent"))
    assert gone.status_code == 404
    events = r.json()["events"]
    assert [(e["from_status"], e["to_status"]) for e in events] == [
        (None, "proposed"),
        ("proposed", "refused"),
    ]


async def test_reorientation_ends_the_previous_and_its_access_history_stays(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    pid = await rsa_person(client, as_persona)
    first = (await orient(client, as_persona, pid, competence="insertion", category=None)).json()
    assert first["target"]["id"] == str(world.organisations["ccas_amiens"])
    assert (
        await act(client, as_persona, "ccas_rsa_agent", first["id"], "accept")
    ).status_code == 200
    mission_locale = str(world.organisations["mission_locale"])
    second = await orient(
        client,
        as_persona,
        pid,
        competence="insertion",
        category="professionnelle",
        target_organisation_id=mission_locale,
    )
    assert second.status_code == 201, second.text
    # only the target answers
    r = await act(client, as_persona, "ccas_rsa_agent", second.json()["id"], "accept")
    assert r.status_code == 403
    r = await act(client, as_persona, "mission_locale_agent", second.json()["id"], "accept")
    assert r.status_code == 200, r.text
    assert r.json()["previous_orientation_id"] == first["id"]
    ended = await client.get(
        f"/v1/orientations/{first['id']}", headers=as_persona("departement_agent")
    )
    assert ended.json()["status"] == "ended"
    assert ended.json()["events"][-1]["reason_code"] == "reorientation"
    # the CCAS followed the person for that orientation only: its access ended with it
    gone = await client.get(f"/v1/beneficiaries/{pid}", headers=as_persona("ccas_rsa_agent"))
    assert gone.status_code == 404
    # history, seen by the département (issuer, care team)
    listed = await client.get(
        f"/v1/orientations?beneficiary_id={pid}", headers=as_persona("departement_agent")
    )
    assert {o["id"] for o in listed.json()["items"]} == {first["id"], second.json()["id"]}


async def test_orientation_bad_input(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    pid = await rsa_person(client, as_persona)
    r = await orient(client, as_persona, pid, competence="aide_facultative", category=None)
    assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == "/competence"
    r = await orient(client, as_persona, pid, competence="domiciliation", category="sociale")
    assert r.status_code == 422
    r = await orient(
        client,
        as_persona,
        pid,
        target_organisation_id=str(world.organisations["secours_populaire"]),
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["pointer"] == "/target_organisation_id"
    r = await orient(
        client,
        as_persona,
        pid,
        referent_user_id=str(world.personas["departement_agent"].principal_id),
    )
    assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == "/referent_user_id"
    # a person the issuer does not follow: 404, as if unknown
    other = await create(client, as_persona, birth_name="Inconnu", first_names="Paul")
    r = await orient(client, as_persona, other.json()["id"])
    assert r.status_code == 404


async def test_a_third_organisation_sees_nothing(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    pid = await rsa_person(client, as_persona)
    oid = (await orient(client, as_persona, pid)).json()["id"]
    for persona in ("ccas_agent", "association_agent", "cias_agent"):
        r = await client.get(f"/v1/orientations/{oid}", headers=as_persona(persona))
        assert r.status_code == 404, persona
        listed = await client.get("/v1/orientations", headers=as_persona(persona))
        assert oid not in [o["id"] for o in listed.json()["items"]]
        r = await act(client, as_persona, persona, oid, "accept")
        assert r.status_code == 404
