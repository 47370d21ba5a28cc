"""The timeline holds only what the caller may see, newest first, ids and codes only; other
capabilities add their records with one line."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.engine import URL

from api.domain import clock
from api.domain.people import timeline
from api.domain.people.deps import TIMELINE_SOURCES
from api.domain.people.rules import Event
from api.routers import people as people_router
from tests.api.people_support import CONSENT, Headers, create, demo_headers
from tests.world import World


async def _note(
    client: httpx.AsyncClient, pid: str, headers: dict[str, str], competence: str, visibility: str
) -> str:
    r = await client.post(
        f"/v1/beneficiaries/{pid}/notes",
        json={"competence": competence, "visibility": visibility, "body": f"corps {visibility}"},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def _items(client: httpx.AsyncClient, pid: str, headers: dict[str, str]) -> list[dict]:
    r = await client.get(f"/v1/beneficiaries/{pid}/timeline", headers=headers)
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


async def test_a_ccas_private_note_is_absent_for_the_departement(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    ccas = as_persona("ccas_rsa_agent")
    pid = await create(client, ccas)
    notes = {v: await _note(client, pid, ccas, "aide_facultative", v) for v in ("private", "team")}
    departement = as_persona("departement_agent")
    joined = await client.post(
        f"/v1/beneficiaries/{pid}/care-team",
        json={"competence": "aide_facultative", "justification": "x" * 12},
        headers=departement,
    )
    # the département holds no aide_facultative: it joins for rsa
    assert joined.status_code == 404
    joined = await client.post(
        f"/v1/beneficiaries/{pid}/care-team",
        json={"competence": "rsa", "justification": "ouverture de droits RSA"},
        headers=departement,
    )
    assert joined.status_code == 201
    rsa_note = await _note(client, pid, departement, "rsa", "team")

    seen = await _items(client, pid, departement)
    note_ids = {i["id"] for i in seen if i["type"] == "note"}
    assert notes["private"] not in note_ids
    # a team note of a competence the département does not follow the person for: absent too
    assert notes["team"] not in note_ids
    assert rsa_note in note_ids
    types = [i["type"] for i in seen]
    assert types.count("care_team.joined") == 2

    own = await _items(client, pid, ccas)
    own_notes = {i["id"] for i in own if i["type"] == "note"}
    assert {notes["private"], notes["team"]} <= own_notes
    # no free text anywhere: bodies and justifications stay in their own endpoints
    assert "corps" not in str(own) and "ouverture" not in str(own)
    instants = [i["at"] for i in own]
    assert instants == sorted(instants, reverse=True)


async def test_nothing_of_an_ase_record_without_the_clearance(
    client: httpx.AsyncClient,
    world: World,
    as_persona: Headers,
    app: FastAPI,
    database_url: URL,
) -> None:
    pid = await create(client, as_persona("ccas_rsa_agent"))
    cleared = await demo_headers(app, world, database_url, "sensitive_agent")
    r = await client.post(
        f"/v1/beneficiaries/{pid}/care-team",
        json={"competence": "ase", "justification": "information préoccupante reçue"},
        headers=cleared,
    )
    assert r.status_code == 201, r.text
    ase_note = await _note(client, pid, cleared, "ase", "team")
    ase_consent = await client.post(
        f"/v1/beneficiaries/{pid}/consents", json={**CONSENT, "competence": "ase"}, headers=cleared
    )
    assert ase_consent.status_code == 201
    r = await client.post(
        f"/v1/beneficiaries/{pid}/care-team",
        json={"competence": "rsa", "justification": "ouverture de droits RSA"},
        headers=as_persona("departement_agent"),
    )
    assert r.status_code == 201

    mine = await _items(client, pid, cleared)
    assert ase_note in {i["id"] for i in mine}
    assert "ase" in {i["competence"] for i in mine}
    for persona in ("departement_agent", "ccas_rsa_agent"):
        items = await _items(client, pid, as_persona(persona))
        assert "ase" not in {i["competence"] for i in items}, persona
        assert ase_note not in {i["id"] for i in items}, persona
        assert ase_consent.json()["id"] not in {i["id"] for i in items}, persona


async def test_consents_access_requests_and_departures_appear(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    ccas = as_persona("ccas_rsa_agent")
    pid = await create(client, ccas)
    consent = (
        await client.post(f"/v1/beneficiaries/{pid}/consents", json=CONSENT, headers=ccas)
    ).json()
    await client.post(
        f"/v1/beneficiaries/{pid}/consents/{consent['id']}/withdraw",
        json={"reason": "retrait"},
        headers=ccas,
    )
    asked = await client.post(
        f"/v1/beneficiaries/{pid}/access-requests",
        json={"competence": "aide_facultative", "reason": "demande d'aide au CIAS en cours"},
        headers=as_persona("cias_agent"),
    )
    await client.post(f"/v1/access-requests/{asked.json()['id']}/approve", json={}, headers=ccas)
    cias = as_persona("cias_agent")
    team = (await client.get(f"/v1/beneficiaries/{pid}/care-team", headers=cias)).json()
    mine = next(m for m in team if m["organisation_id"] == str(world.organisations["cias"]))
    left = await client.request(
        "DELETE",
        f"/v1/beneficiaries/{pid}/care-team/{mine['id']}",
        json={"reason": "fin de l'accompagnement, texte libre"},
        headers=cias,
    )
    assert left.status_code == 204

    items = await _items(client, pid, ccas)
    by_type = {i["type"]: i for i in items}
    assert {
        "consent.given",
        "consent.withdrawn",
        "access_request.created",
        "access_request.decided",
        "care_team.left",
    } <= set(by_type)
    assert by_type["consent.given"]["codes"]["method"] == "oral"
    assert by_type["access_request.decided"]["status"] == "approved"
    assert "end_reason" not in by_type["care_team.left"]["codes"]  # free text is left out
    assert "retrait" not in str(items)
    # the whole timeline page by page, newest first, nothing twice
    seen: list[tuple[str, str]] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = await client.get(f"/v1/beneficiaries/{pid}/timeline", params=params, headers=ccas)
        seen += [(i["type"], i["id"]) for i in page.json()["items"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == [(i["type"], i["id"]) for i in items]
    log = await client.get(f"/v1/beneficiaries/{pid}/access-log", headers=ccas)
    assert "timeline.read" in [i["action"] for i in log.json()["items"]]


@pytest.fixture
def extra_source(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Event]]:
    """A source added the way another capability adds one (named beside the others in
    ``api.domain.people.deps``); removed afterwards."""
    produced: list[Event] = []

    async def referrals(query: timeline.TimelineQuery) -> list[Event]:
        return [*produced]

    monkeypatch.setattr(people_router, "TIMELINE_SOURCES", (*TIMELINE_SOURCES, referrals))
    yield produced


async def test_a_registered_source_joins_the_timeline_and_its_sensitive_events_are_filtered(
    client: httpx.AsyncClient, world: World, as_persona: Headers, extra_source: list[Event]
) -> None:
    ccas = as_persona("ccas_rsa_agent")
    pid = await create(client, ccas)
    shown = Event(
        at=clock.now(),
        type="referral.sent",
        id=uuid.uuid4(),
        organisation_id=world.organisations["ccas_amiens"],
        competence="aide_alimentaire",
        status="sent",
    )
    hidden = Event(
        at=clock.now(),
        type="referral.sent",
        id=uuid.uuid4(),
        organisation_id=world.organisations["departement"],
        competence="violences",
    )
    extra_source += [shown, hidden]
    items = await _items(client, pid, ccas)
    ids = {i["id"] for i in items}
    assert str(shown.id) in ids and str(hidden.id) not in ids
    assert items[0]["type"] == "referral.sent"


async def test_a_stranger_and_a_bad_cursor(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    pid = await create(client, as_persona("ccas_rsa_agent"))
    r = await client.get(f"/v1/beneficiaries/{pid}/timeline", headers=as_persona("cias_agent"))
    assert r.status_code == 404
    bad = await client.get(
        f"/v1/beneficiaries/{pid}/timeline",
        params={"cursor": "WyJ4IiwieSIsInoiXQ=="},
        headers=as_persona("ccas_rsa_agent"),
    )
    assert bad.status_code == 422
