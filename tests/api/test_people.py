"""People: creation, duplicates, discovery, visibility per category, edits, care team, audit."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.world import World

Headers = Callable[[str], dict[str, str]]


def person(**overrides: Any) -> dict[str, Any]:
    body = {
        "competence": "aide_facultative",
        "birth_name": "Lefèvre",
        "first_names": "Marie-Hélène",
        "birth_date": "1975-04-12",
        "sex": "F",
        "commune": "80021",
        "phone": "06 00 00 00 01",
        "situation": {"housing": "locataire"},
    }
    body.update(overrides)
    return body


async def create(
    client: httpx.AsyncClient,
    as_persona: Headers,
    persona: str = "ccas_rsa_agent",
    **overrides: Any,
) -> httpx.Response:
    return await client.post(
        "/v1/beneficiaries", json=person(**overrides), headers=as_persona(persona)
    )


async def test_create_then_read_with_etag_and_access_log(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    r = await create(client, as_persona)
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    assert r.headers["location"] == f"/v1/beneficiaries/{pid}"
    read = await client.get(f"/v1/beneficiaries/{pid}", headers=as_persona("ccas_rsa_agent"))
    assert read.status_code == 200
    assert read.json()["birth_name"] == "Lefèvre"
    assert read.headers["etag"] == '"1"'
    log = await client.get(
        f"/v1/beneficiaries/{pid}/access-log", headers=as_persona("ccas_rsa_agent")
    )
    actions = [i["action"] for i in log.json()["items"]]
    assert actions[:2] == ["beneficiary.read", "beneficiary.create"]


async def test_a_read_is_audited_once_and_a_hidden_person_leaves_no_entry(
    client: httpx.AsyncClient, world: World, as_persona: Headers, connection: AsyncConnection
) -> None:
    """The person read writes its entry in the statement that reads the record, only when
    the record comes back: once for the agent who reads it, never for an organisation that
    gets a 404."""
    pid = (await create(client, as_persona)).json()["id"]
    path = f"/v1/beneficiaries/{pid}"
    read = await client.get(path, headers={**as_persona("ccas_rsa_agent"), "X-Request-ID": "r1"})
    assert read.status_code == 200
    hidden = await client.get(
        path, headers={**as_persona("departement_agent"), "X-Request-ID": "r2"}
    )
    assert hidden.status_code == 404
    entries = text(
        "SELECT action, resource_id, beneficiary_id::text, actor_user_id, chain_position "
        "FROM audit_entry WHERE request_id = :request"
    )
    for persona, request, expected in (("ccas_rsa_agent", "r1", 1), ("departement_agent", "r2", 0)):
        acting = world.personas[persona]
        await connection.execute(
            text("SELECT set_config('guichet.organisation_id', :o, true)"),
            {"o": str(acting.organisation_id)},
        )
        rows = (await connection.execute(entries, {"request": request})).all()
        assert len(rows) == expected, persona
        for row in rows:
            assert (row.action, row.resource_id, row.beneficiary_id) == (
                "beneficiary.read",
                pid,
                pid,
            )
            assert row.actor_user_id == acting.principal_id
            assert row.chain_position is None  # appended unchained, as every request does


async def test_other_organisations_get_404_and_see_no_id(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    pid = (await create(client, as_persona)).json()["id"]
    for persona in (
        "departement_agent",
        "cias_agent",
        "association_agent",
        "ccas_agent",
        "platform_admin",
    ):
        r = await client.get(f"/v1/beneficiaries/{pid}", headers=as_persona(persona))
        assert r.status_code == 404, persona
        listed = await client.get("/v1/beneficiaries", headers=as_persona(persona))
        assert pid not in listed.text, persona


async def test_accueil_reads_identity_and_contact_only(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    pid = (await create(client, as_persona, "ccas_rsa_agent")).json()["id"]
    # the CCAS's accueil agent is attached through the organisation's membership
    r = await client.get(f"/v1/beneficiaries/{pid}", headers={**as_persona("ccas_accueil")})
    assert r.status_code == 200
    personal = set(r.json()["categories"]) - {"referrals", "orientations"}
    assert personal == {"identity", "contact"}
    assert "situation" not in r.json() and r.json()["phone"] == "06 00 00 00 01"


async def test_duplicate_is_409_with_previews_then_force_create_is_audited(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    first = (await create(client, as_persona)).json()["id"]
    again = await create(client, as_persona, birth_name="LEFEVRE", first_names="marie helene")
    assert again.status_code == 409
    assert again.json()["code"] == "possible-duplicate"
    candidate = again.json()["candidates"][0]
    assert candidate["id"] == first and candidate["birth_year"] == 1975
    assert candidate["attached"] is True
    assert "phone" not in candidate
    forced = await create(
        client,
        as_persona,
        birth_name="LEFEVRE",
        force_create=True,
        justification="homonyme vérifié au guichet",
    )
    assert forced.status_code == 201


async def test_same_names_other_birth_date_is_another_person(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    await create(client, as_persona)
    other = await create(client, as_persona, birth_date="1976-04-12")
    assert other.status_code == 201


NAME_VARIANTS = st.sampled_from(
    [
        ("Lefèvre", None, "Marie-Hélène"),
        ("LEFEVRE", None, "marie hélène"),
        ("lefevre", None, "Marie Helene"),
        ("Dupont", "Lefèvre", "Marie-Hélène"),  # married name typed as usage name
    ]
)


@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
@given(variant=NAME_VARIANTS)
async def test_name_variants_find_the_existing_person(
    client: httpx.AsyncClient,
    world: World,
    as_persona: Headers,
    variant: tuple[str, str | None, str],
) -> None:
    birth, usage, first = variant
    # examples share the test's transaction: the first one creates the person
    existing = await create(
        client,
        as_persona,
        birth_name="Lefèvre",
        first_names="Marie-Hélène",
        birth_date="1961-02-03",
    )
    assert existing.status_code in (201, 409)
    r = await create(
        client,
        as_persona,
        birth_name=birth,
        usage_name=usage,
        first_names=first,
        birth_date="1961-02-03",
    )
    assert r.status_code == 409


async def test_bad_input_names_the_field_and_writes_nothing(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    cases = {
        "/nir": {"nir": "275046812345699"},
        "/birth_date": {"birth_date": "2999-01-01"},
        "/commune": {"commune": "99999"},
        "/unknown_field": {"unknown_field": 1},
    }
    for pointer, override in cases.items():
        r = await create(client, as_persona, **override)
        assert r.status_code == 422, (pointer, r.text)
        assert pointer in [e["pointer"] for e in r.json()["errors"]]
    listed = await client.get("/v1/beneficiaries", headers=as_persona("ccas_rsa_agent"))
    # (other tests may have committed people of their own: none is this one)
    assert [p for p in listed.json()["items"] if p["birth_name"] == "Lefèvre"] == []


async def test_patch_needs_if_match_and_refuses_stale(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    pid = (await create(client, as_persona)).json()["id"]
    url = f"/v1/beneficiaries/{pid}"
    headers = as_persona("ccas_rsa_agent")
    assert (await client.patch(url, json={"phone": "07"}, headers=headers)).status_code == 428
    ok = await client.patch(url, json={"phone": "07 11"}, headers={**headers, "If-Match": '"1"'})
    assert ok.status_code == 200 and ok.json()["phone"] == "07 11" and ok.headers["etag"] == '"2"'
    stale = await client.patch(url, json={"phone": "07 22"}, headers={**headers, "If-Match": '"1"'})
    assert stale.status_code == 412


async def test_preview_search_needs_exact_birth_date_and_accueil_territory(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    pid = (await create(client, as_persona)).json()["id"]
    params = {"birth_date": "1975-04-12", "last_name": "lefevre", "first_name": "marie"}
    # the CIAS holds accueil on Amiens (member of its EPCI): it may discover, not read
    found = await client.get(
        "/v1/beneficiaries/search", params=params, headers=as_persona("cias_agent")
    )
    assert found.status_code == 200
    items = found.json()["items"]
    assert [i["id"] for i in items] == [pid]
    assert items[0]["attached"] is False and set(items[0]) == {
        "id",
        "last_name",
        "first_names",
        "birth_year",
        "commune",
        "followed_by",
        "attached",
    }
    assert (
        await client.get(f"/v1/beneficiaries/{pid}", headers=as_persona("cias_agent"))
    ).status_code == 404
    # Corbie's CCAS holds accueil on Corbie only
    far = await client.get(
        "/v1/beneficiaries/search", params=params, headers=as_persona("ccas_agent")
    )
    assert far.json()["items"] == []
    wrong_day = await client.get(
        "/v1/beneficiaries/search",
        params={**params, "birth_date": "1975-04-13"},
        headers=as_persona("cias_agent"),
    )
    assert wrong_day.json()["items"] == []


async def test_break_glass_by_legal_holder_shows_in_access_log(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    pid = (await create(client, as_persona)).json()["id"]
    # the CIAS is no legal holder of rsa: 404, nothing revealed
    denied = await client.post(
        f"/v1/beneficiaries/{pid}/care-team",
        json={"competence": "rsa", "justification": "instruction RSA urgente"},
        headers=as_persona("cias_agent"),
    )
    assert denied.status_code == 404
    joined = await client.post(
        f"/v1/beneficiaries/{pid}/care-team",
        json={"competence": "rsa", "justification": "instruction RSA urgente"},
        headers=as_persona("departement_agent"),
    )
    assert joined.status_code == 201, joined.text
    assert {m["source"] for m in joined.json()} == {"creation", "break_glass"}
    log = await client.get(
        f"/v1/beneficiaries/{pid}/access-log", headers=as_persona("ccas_rsa_agent")
    )
    glass = [i for i in log.json()["items"] if i["action"] == "care_team.break_glass"]
    assert glass and glass[0]["purpose"] == "instruction RSA urgente"


async def test_leaving_the_care_team_ends_access(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    pid = (await create(client, as_persona)).json()["id"]
    team = (
        await client.get(f"/v1/beneficiaries/{pid}/care-team", headers=as_persona("ccas_rsa_agent"))
    ).json()
    r = await client.request(
        "DELETE",
        f"/v1/beneficiaries/{pid}/care-team/{team[0]['id']}",
        json={"reason": "fin d'accompagnement"},
        headers=as_persona("ccas_rsa_agent"),
    )
    assert r.status_code == 204
    assert (
        await client.get(f"/v1/beneficiaries/{pid}", headers=as_persona("ccas_rsa_agent"))
    ).status_code == 404


async def test_concurrent_patches_with_one_etag_let_exactly_one_win(
    committing_client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    c = committing_client
    pid = (
        await create(c, as_persona, birth_date="1980-01-0" + "1", first_names="Concurrence")
    ).json()["id"]
    headers = {**as_persona("ccas_rsa_agent"), "If-Match": '"1"'}
    answers = await asyncio.gather(
        *[
            c.patch(f"/v1/beneficiaries/{pid}", json={"phone": f"06 {i:02d}"}, headers=headers)
            for i in range(20)
        ]
    )
    codes = sorted(a.status_code for a in answers)
    assert codes.count(200) == 1 and codes.count(412) == 19


async def test_household_and_budget_give_the_reste_a_vivre(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    pid = (await create(client, as_persona)).json()["id"]
    headers = as_persona("ccas_rsa_agent")
    members = {"members": [{"relation": "enfant", "first_name": "Léo", "birth_date": "2015-03-01"}]}
    r = await client.put(f"/v1/beneficiaries/{pid}/household", json=members, headers=headers)
    assert r.status_code == 200, r.text
    bad = await client.put(
        f"/v1/beneficiaries/{pid}/household",
        json={"members": [{"relation": "enfant"}]},
        headers=headers,
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["pointer"] == "/members/0"
    budget = {
        "resources": [{"type": "salaire", "monthly_amount": "1500.00"}],
        "charges": [{"type": "loyer", "monthly_amount": "600.00"}],
    }
    r = await client.put(f"/v1/beneficiaries/{pid}/budget", json=budget, headers=headers)
    assert r.status_code == 200, r.text
    # (1500 - 600) / 2 people / 30 days
    assert r.json()["household_size"] == 2
    assert r.json()["remaining_income_per_person_per_day"] == "15.00"
    accueil = await client.get(
        f"/v1/beneficiaries/{pid}/budget", headers=as_persona("ccas_accueil")
    )
    assert accueil.status_code == 403


async def test_departement_does_not_read_a_ccas_private_note(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    pid = (await create(client, as_persona)).json()["id"]
    ccas = as_persona("ccas_rsa_agent")
    for visibility in ("private", "organisation", "team"):
        r = await client.post(
            f"/v1/beneficiaries/{pid}/notes",
            headers=ccas,
            json={
                "competence": "aide_facultative",
                "visibility": visibility,
                "body": f"note {visibility}",
            },
        )
        assert r.status_code == 201, r.text
    joined = await client.post(
        f"/v1/beneficiaries/{pid}/care-team",
        json={"competence": "rsa", "justification": "ouverture de droits RSA"},
        headers=as_persona("departement_agent"),
    )
    assert joined.status_code == 201
    seen = await client.get(
        f"/v1/beneficiaries/{pid}/notes", headers=as_persona("departement_agent")
    )
    assert seen.status_code == 200
    assert seen.json() == []
    own = await client.get(f"/v1/beneficiaries/{pid}/notes", headers=ccas)
    assert {n["visibility"] for n in own.json()} == {"private", "organisation", "team"}


async def test_access_request_approved_by_the_team_grants_what_it_named(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    pid = (await create(client, as_persona)).json()["id"]
    asked = await client.post(
        f"/v1/beneficiaries/{pid}/access-requests",
        json={"competence": "aide_facultative", "reason": "demande d'aide au CIAS en cours"},
        headers=as_persona("cias_agent"),
    )
    assert asked.status_code == 201, asked.text
    request_id = asked.json()["id"]
    outbox = await client.get(
        "/v1/access-requests", params={"box": "outbox"}, headers=as_persona("cias_agent")
    )
    assert [r["id"] for r in outbox.json()["items"]] == [request_id]
    # the requester cannot approve its own request; a stranger does not see it
    own = await client.post(
        f"/v1/access-requests/{request_id}/approve", json={}, headers=as_persona("cias_agent")
    )
    assert own.status_code == 404
    stranger = await client.post(
        f"/v1/access-requests/{request_id}/approve", json={}, headers=as_persona("ccas_agent")
    )
    assert stranger.status_code == 404
    inbox = await client.get("/v1/access-requests", headers=as_persona("ccas_rsa_agent"))
    assert [r["id"] for r in inbox.json()["items"]] == [request_id]
    approved = await client.post(
        f"/v1/access-requests/{request_id}/approve", json={}, headers=as_persona("ccas_rsa_agent")
    )
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    again = await client.post(
        f"/v1/access-requests/{request_id}/deny", json={}, headers=as_persona("ccas_rsa_agent")
    )
    assert again.status_code == 409
    read = await client.get(f"/v1/beneficiaries/{pid}", headers=as_persona("cias_agent"))
    assert read.status_code == 200
    assert set(read.json()["categories"]) == {"identity", "contact"}
    assert "situation" not in read.json()
