"""Legal-aid dossiers through the API: instruction by a delegate, decision by the legal
holder, field ownership, visibility by the people rules, audit and the change feed."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL

from api.db.engine import owner_connection
from tests.api.feed_support import FEED_PATIENCE_SECONDS
from tests.world import Persona, World

Headers = Callable[[str], dict[str, str]]

DECIDEUR = "departement_decideur"


@pytest.fixture
async def decideur(world: World, database_url: URL) -> str:
    """The département's decideur (a demo user outside the shared personas)."""
    if DECIDEUR not in world.personas:
        organisation = world.organisations["departement"]
        async with owner_connection(database_url) as conn:
            row = (
                await conn.execute(
                    text(
                        "SELECT u.id, m.roles FROM app_user u JOIN membership m "
                        "ON m.user_id = u.id WHERE u.email = :e AND m.organisation_id = :o"
                    ),
                    {"e": "decideur.cd80@somme.demo", "o": organisation},
                )
            ).one()
        world.personas[DECIDEUR] = Persona(DECIDEUR, "user", row.id, organisation, tuple(row.roles))
    return DECIDEUR


async def rsa_person(
    client: httpx.AsyncClient,
    as_persona: Headers,
    persona: str = "ccas_rsa_agent",
    **overrides: Any,
) -> str:
    """A person of Amiens the CCAS (RSA by convention) follows for rsa."""
    tag = uuid.uuid4()
    body = {
        "competence": "rsa",
        "birth_name": "Dossier",
        "first_names": f"P{tag.hex[:10]}",
        # a birth date of its own, so that no two of these people look alike
        "birth_date": (date(1940, 1, 1) + timedelta(days=tag.int % 25_000)).isoformat(),
        "sex": "F",
        "commune": "80021",
    }
    body.update(overrides)
    r = await client.post("/v1/beneficiaries", json=body, headers=as_persona(persona))
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


INSTRUCTION = {
    "household_size": 2,
    "monthly_resources": "612.5",
    "housing": "locataire",
    "requested_on": "2026-10-01",
    "attachments": [{"name": "avis d'imposition", "kind": "ressources"}],
}


async def open_dossier(
    client: httpx.AsyncClient,
    as_persona: Headers,
    person: str,
    persona: str = "ccas_rsa_agent",
    **overrides: Any,
) -> httpx.Response:
    body: dict[str, Any] = {"beneficiary_id": person, "prestation": "rsa"}
    body.update(overrides)
    return await client.post("/v1/dossiers", json=body, headers=as_persona(persona))


async def act(
    client: httpx.AsyncClient,
    as_persona: Headers,
    dossier: str,
    action: str,
    persona: str,
    body: dict[str, Any] | None = None,
) -> httpx.Response:
    return await client.post(
        f"/v1/dossiers/{dossier}/{action}", json=body or {}, headers=as_persona(persona)
    )


async def submitted_dossier(
    client: httpx.AsyncClient, as_persona: Headers, **overrides: Any
) -> tuple[str, str]:
    person = await rsa_person(client, as_persona)
    r = await open_dossier(client, as_persona, person, instruction=INSTRUCTION, **overrides)
    assert r.status_code == 201, r.text
    dossier = r.json()["id"]
    submitted = await act(client, as_persona, dossier, "submit", "ccas_rsa_agent")
    assert submitted.status_code == 200, submitted.text
    return person, dossier


async def test_a_ccas_instructs_and_the_departement_decides(
    client: httpx.AsyncClient, world: World, as_persona: Headers, decideur: str
) -> None:
    person = await rsa_person(client, as_persona)
    created = await open_dossier(
        client,
        as_persona,
        person,
        instruction=INSTRUCTION,
        external_refs=[{"system": "logiciel-ccas", "id": "A-17"}],
    )
    assert created.status_code == 201, created.text
    dossier = created.json()
    url = f"/v1/dossiers/{dossier['id']}"
    assert created.headers["location"] == url and created.headers["etag"] == '"1"'
    assert dossier["status"] == "draft"
    assert dossier["instructing_organisation"]["id"] == str(world.organisations["ccas_amiens"])
    assert dossier["deciding_organisation"]["id"] == str(world.organisations["departement"])
    assert dossier["instruction"]["monthly_resources"] == "612.50"
    assert dossier["allowed_actions"] == ["submit", "close"]
    assert dossier["external_refs"] == [
        {
            "system": "logiciel-ccas",
            "id": "A-17",
            "organisation_id": str(world.organisations["ccas_amiens"]),
        }
    ]
    # a draft stays with its instructor: the département is not in the care team for rsa yet
    assert (await client.get(url, headers=as_persona("departement_agent"))).status_code == 404

    assert (await act(client, as_persona, dossier["id"], "submit", "ccas_rsa_agent")).json()[
        "status"
    ] == "submitted"
    team = await client.get(
        f"/v1/beneficiaries/{person}/care-team", headers=as_persona("ccas_rsa_agent")
    )
    joined = [
        m for m in team.json() if m["organisation_id"] == str(world.organisations["departement"])
    ]
    assert [(m["competence"], m["source"]) for m in joined] == [("rsa", "dossier")]
    seen = await client.get(url, headers=as_persona("departement_agent"))
    assert seen.status_code == 200
    assert seen.json()["allowed_actions"] == ["review"]

    reviewed = await act(client, as_persona, dossier["id"], "review", "departement_agent")
    assert reviewed.json()["status"] == "under_review"
    decision = {"decision": "granted", "amount": "607.75", "start_on": "2026-11-01"}
    # decisions stay with the law: not the delegate, not an agent without the decideur role
    for persona in ("ccas_rsa_agent", "departement_agent"):
        refused = await act(client, as_persona, dossier["id"], "decide", persona, decision)
        assert refused.status_code == 403, (persona, refused.text)
    decided = await act(client, as_persona, dossier["id"], "decide", decideur, decision)
    assert decided.status_code == 200, decided.text
    assert decided.json()["status"] == "decided"
    assert decided.json()["decision"]["amount"] == "607.75"
    assert decided.json()["decision"]["decided_on"] is not None
    notified = await act(client, as_persona, dossier["id"], "notify", "departement_agent")
    assert notified.json()["status"] == "notified"
    closed = await act(client, as_persona, dossier["id"], "close", "ccas_rsa_agent")
    assert closed.status_code == 200 and closed.json()["status"] == "closed"
    events = closed.json()["events"]
    assert [e["action"] for e in events] == [
        "create",
        "submit",
        "review",
        "decide",
        "notify",
        "close",
    ]
    assert [e["to_status"] for e in events][-1] == "closed"
    assert events[3]["organisation_id"] == str(world.organisations["departement"])

    timeline = await client.get(
        f"/v1/beneficiaries/{person}/timeline", headers=as_persona("ccas_rsa_agent")
    )
    steps = [(i["type"], i["status"]) for i in timeline.json()["items"] if i["id"] == dossier["id"]]
    assert steps[0] == ("dossier.status_changed", "closed")
    assert steps[-1] == ("dossier.created", "draft") and len(steps) == 6
    log = await client.get(
        f"/v1/beneficiaries/{person}/access-log", headers=as_persona("ccas_rsa_agent")
    )
    actions = {i["action"] for i in log.json()["items"]}
    assert {"dossier.create", "dossier.submit", "dossier.decide", "dossier.read"} <= actions


async def test_a_transition_from_the_wrong_status_is_409_with_allowed_actions(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    _, dossier = await submitted_dossier(client, as_persona)
    again = await act(client, as_persona, dossier, "submit", "ccas_rsa_agent")
    assert again.status_code == 409
    assert again.json()["code"] == "invalid-transition"
    assert again.json()["allowed_actions"] == []
    early = await act(client, as_persona, dossier, "notify", "departement_agent")
    assert early.status_code == 409 and early.json()["allowed_actions"] == ["review"]
    # the other side's action, allowed from this status: 403
    other = await act(client, as_persona, dossier, "review", "ccas_rsa_agent")
    assert other.status_code == 403


async def test_decisions_state_their_reasons_and_grant_nothing_when_refused(
    client: httpx.AsyncClient, world: World, as_persona: Headers, decideur: str
) -> None:
    _, dossier = await submitted_dossier(client, as_persona)
    await act(client, as_persona, dossier, "review", "departement_agent")
    bad = {
        "/reason": {"decision": "rejected"},
        "/amount": {"decision": "adjourned", "reason": "pièces manquantes", "amount": "10"},
        "/end_on": {"decision": "granted", "start_on": "2026-12-01", "end_on": "2026-11-01"},
    }
    for pointer, body in bad.items():
        r = await act(client, as_persona, dossier, "decide", decideur, body)
        assert r.status_code == 422, (pointer, r.text)
        assert pointer in [e["pointer"] for e in r.json()["errors"]]
    r = await client.get(f"/v1/dossiers/{dossier}", headers=as_persona(decideur))
    assert r.json()["status"] == "under_review" and r.json()["decision"] is None


async def test_each_side_writes_only_the_fields_it_owns(
    client: httpx.AsyncClient, world: World, as_persona: Headers, decideur: str
) -> None:
    _, dossier = await submitted_dossier(client, as_persona)
    url = f"/v1/dossiers/{dossier}"
    ccas, dep = as_persona("ccas_rsa_agent"), as_persona(decideur)
    etag = (await client.get(url, headers=ccas)).headers["etag"]
    foreign = await client.patch(
        url, json={"instruction": {"household_size": 5}}, headers={**dep, "If-Match": etag}
    )
    assert foreign.status_code == 403
    assert foreign.json()["code"] == "field-not-owned"
    assert [e["pointer"] for e in foreign.json()["errors"]] == ["/instruction"]
    mixed = await client.patch(
        url,
        json={"instruction": {"household_size": 5}, "amount": "1"},
        headers={**ccas, "If-Match": etag},
    )
    assert mixed.status_code == 403 and [e["pointer"] for e in mixed.json()["errors"]] == [
        "/amount"
    ]
    # own fields: If-Match required, a stale one refused
    missing = await client.patch(url, json={"instruction": {"household_size": 5}}, headers=ccas)
    assert missing.status_code == 428
    ok = await client.patch(
        url, json={"instruction": {"household_size": 5}}, headers={**ccas, "If-Match": etag}
    )
    assert ok.status_code == 200, ok.text
    # replaced as a whole: what was not sent is gone
    assert ok.json()["instruction"]["household_size"] == 5
    assert ok.json()["instruction"]["monthly_resources"] is None
    assert ok.headers["etag"] != etag
    stale = await client.patch(
        url, json={"instruction": {"household_size": 6}}, headers={**ccas, "If-Match": etag}
    )
    assert stale.status_code == 412
    # once decided, the instruction no longer changes; the decision may be corrected
    await act(client, as_persona, dossier, "review", decideur)
    await act(client, as_persona, dossier, "decide", decideur, {"decision": "granted"})
    current = await client.get(url, headers=ccas)
    closed = await client.patch(
        url,
        json={"instruction": {"household_size": 7}},
        headers={**ccas, "If-Match": current.headers["etag"]},
    )
    assert closed.status_code == 409
    corrected = await client.patch(
        url, json={"amount": "400.00"}, headers={**dep, "If-Match": current.headers["etag"]}
    )
    assert corrected.status_code == 200, corrected.text
    assert corrected.json()["decision"]["amount"] == "400.00"
    assert corrected.json()["decision_updated_at"] >= current.json()["decision_updated_at"]


async def test_a_ccas_without_an_rsa_convention_and_an_association_see_no_dossier(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    # a person of Corbie followed by its CCAS for aide facultative
    r = await client.post(
        "/v1/beneficiaries",
        json={
            "competence": "aide_facultative",
            "birth_name": "Corbéenne",
            "first_names": "Alice",
            "birth_date": "1979-09-19",
            "sex": "F",
            "commune": "80212",
        },
        headers=as_persona("ccas_agent"),
    )
    assert r.status_code == 201, r.text
    person = r.json()["id"]
    # the département, legal holder of rsa there, joins the team and opens a dossier
    joined = await client.post(
        f"/v1/beneficiaries/{person}/care-team",
        json={"competence": "rsa", "justification": "ouverture de droits RSA"},
        headers=as_persona("departement_agent"),
    )
    assert joined.status_code == 201, joined.text
    created = await open_dossier(client, as_persona, person, "departement_agent")
    assert created.status_code == 201, created.text
    dossier = created.json()["id"]
    assert created.json()["deciding_organisation"]["id"] == str(world.organisations["departement"])
    # the CCAS de Corbie follows the person, but not for rsa: it sees no rsa dossier
    for persona in ("ccas_agent", "association_agent", "ccas_rsa_agent", "cias_agent"):
        assert (
            await client.get(f"/v1/dossiers/{dossier}", headers=as_persona(persona))
        ).status_code == 404, persona
        listed = await client.get(
            "/v1/dossiers", params={"beneficiary_id": person}, headers=as_persona(persona)
        )
        assert listed.status_code == 200 and listed.json()["items"] == [], persona
    # nor see it in the person's timeline, where the département does
    for persona, shown in (("ccas_agent", False), ("departement_agent", True)):
        timeline = await client.get(
            f"/v1/beneficiaries/{person}/timeline", headers=as_persona(persona)
        )
        assert timeline.status_code == 200, timeline.text
        types = {i["type"] for i in timeline.json()["items"] if i["id"] == dossier}
        assert (types == {"dossier.created"}) is shown, (persona, types)
    # nor may it open one there
    refused = await open_dossier(client, as_persona, person, "ccas_agent")
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["pointer"] == "/prestation"


async def test_the_desk_role_sees_no_dossier_and_may_not_open_one(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    person, dossier = await submitted_dossier(client, as_persona)
    r = await client.get(f"/v1/dossiers/{dossier}", headers=as_persona("ccas_accueil"))
    assert r.status_code == 404
    r = await open_dossier(client, as_persona, person, "ccas_accueil")
    assert r.status_code == 403


async def test_list_filters_pages_and_never_shows_another_organisations_dossier(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    ids = []
    for _ in range(3):
        person = await rsa_person(client, as_persona)
        r = await open_dossier(client, as_persona, person)
        ids.append(r.json()["id"])
    await act(client, as_persona, ids[0], "submit", "ccas_rsa_agent")
    headers = as_persona("ccas_rsa_agent")
    first = await client.get("/v1/dossiers", params={"limit": 2}, headers=headers)
    assert first.status_code == 200 and len(first.json()["items"]) == 2
    rest = await client.get(
        "/v1/dossiers",
        params={"limit": 200, "cursor": first.json()["next_cursor"]},
        headers=headers,
    )
    listed = {d["id"] for d in first.json()["items"] + rest.json()["items"]}
    assert set(ids) <= listed
    drafts = await client.get(
        "/v1/dossiers",
        params={"status": "draft", "prestation": "rsa", "limit": 200},
        headers=headers,
    )
    assert ids[0] not in {d["id"] for d in drafts.json()["items"]}
    assert {ids[1], ids[2]} <= {d["id"] for d in drafts.json()["items"]}
    dep = await client.get(
        "/v1/dossiers", params={"limit": 200}, headers=as_persona("departement_agent")
    )
    assert ids[0] in {d["id"] for d in dep.json()["items"]}
    assert not {ids[1], ids[2]} & {d["id"] for d in dep.json()["items"]}
    bad = await client.get("/v1/dossiers", params={"status": "nope"}, headers=headers)
    assert bad.status_code == 422


async def test_external_references_are_unique_per_organisation(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    ref = [{"system": "logiciel-ccas", "id": "DUP-1"}]
    first = await open_dossier(
        client, as_persona, await rsa_person(client, as_persona), external_refs=ref
    )
    assert first.status_code == 201
    again = await open_dossier(
        client, as_persona, await rsa_person(client, as_persona), external_refs=ref
    )
    assert again.status_code == 409
    assert again.json()["errors"][0]["pointer"] == "/external_refs/0"
    twice = await open_dossier(
        client, as_persona, await rsa_person(client, as_persona), external_refs=ref * 2
    )
    assert twice.status_code == 422


async def test_an_idempotency_key_replays_the_creation(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    person = await rsa_person(client, as_persona)
    headers = {**as_persona("ccas_rsa_agent"), "Idempotency-Key": f"dossier-{person}"}
    body = {"beneficiary_id": person, "prestation": "rsa"}
    first = await client.post("/v1/dossiers", json=body, headers=headers)
    second = await client.post("/v1/dossiers", json=body, headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.headers["idempotent-replayed"] == "true"
    assert first.json()["id"] == second.json()["id"]
    listed = await client.get(
        "/v1/dossiers", params={"beneficiary_id": person}, headers=as_persona("ccas_rsa_agent")
    )
    assert len(listed.json()["items"]) == 1


async def test_changes_are_announced_to_both_sides(
    committing_client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    c = committing_client
    feed = await c.get(
        "/v1/changes", params={"types": "dossier"}, headers=as_persona("client_with_scopes")
    )
    assert feed.status_code == 200, feed.text
    cursor = None
    while True:
        page = await c.get(
            "/v1/changes",
            params={"types": "dossier", "limit": 200, **({"after": cursor} if cursor else {})},
            headers=as_persona("client_with_scopes"),
        )
        cursor = page.json()["next_cursor"] or cursor
        if not page.json()["items"]:
            break
    _, dossier = await submitted_dossier(c, as_persona)
    # the département's system pulls what the CCAS instructed: the feed, then the dossier
    # (the feed serves an event once every older transaction of the server has ended: in a
    # parallel run, the other workers' tests too)
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + FEED_PATIENCE_SECONDS
    while time.monotonic() < deadline:
        page = await c.get(
            "/v1/changes",
            params={"types": "dossier", "limit": 200, **({"after": cursor} if cursor else {})},
            headers=as_persona("client_with_scopes"),
        )
        cursor = page.json()["next_cursor"] or cursor
        seen += [i for i in page.json()["items"] if i["id"] == dossier]
        if {i["action"] for i in seen} >= {"created", "status_changed"}:
            break
        if not page.json()["items"]:
            await asyncio.sleep(0.1)
    assert [i["action"] for i in seen] == ["created", "status_changed"]
    read = await c.get(f"/v1/dossiers/{dossier}", headers=as_persona("client_with_scopes"))
    assert read.status_code == 200
    assert read.json()["instruction"]["household_size"] == 2
