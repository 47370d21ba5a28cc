"""Conventions: rules answered 422 naming the item, lifecycle, immediate effect on holdings."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import httpx

from api.domain import clock
from tests.api.matrix import RSA_CONVENTION
from tests.world import World

Headers = Callable[[str], dict[str, str]]


async def _holds_rsa_in_amiens(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> bool:
    ccas = world.organisations["ccas_amiens"]
    r = await client.get(
        f"/v1/organisations/{ccas}/holdings",
        params={"competence": "rsa", "commune": "80021"},
        headers=as_persona("ccas_rsa_agent"),
    )
    assert r.status_code == 200
    return bool(r.json()["items"])


async def _competent_for_rsa(client: httpx.AsyncClient, on: date | None = None) -> list[str]:
    params: dict[str, Any] = {"competence": "rsa", "commune": "80021"}
    if on:
        params["on"] = on.isoformat()
    r = await client.get("/v1/directory/competent", params=params)
    assert r.status_code == 200
    return [h["organisation"]["name"] for h in r.json()["holders"]]


async def test_directory_puts_the_delegate_first(client: httpx.AsyncClient, world: World) -> None:
    assert await _competent_for_rsa(client) == [
        "CCAS d'Amiens",
        "Conseil départemental de la Somme",
    ]
    # on a commune without convention only the legal holder answers
    r = await client.get(
        "/v1/directory/competent", params={"competence": "rsa", "commune": "80212"}
    )
    assert [h["source"] for h in r.json()["holders"]] == ["law"]


async def test_suspending_removes_the_holding_at_the_next_request(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    conv = world.conventions[RSA_CONVENTION]
    assert await _holds_rsa_in_amiens(client, world, as_persona)
    r = await client.post(
        f"/v1/conventions/{conv}/suspend",
        json={"reason": "contrôle"},
        headers=as_persona("departement_admin"),
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "suspended"
    assert r.json()["events"][-1]["reason"] == "contrôle"
    assert not await _holds_rsa_in_amiens(client, world, as_persona)
    assert "CCAS d'Amiens" not in await _competent_for_rsa(client)

    r = await client.post(
        f"/v1/conventions/{conv}/resume", json={}, headers=as_persona("departement_admin")
    )
    assert r.json()["status"] == "active"
    assert await _holds_rsa_in_amiens(client, world, as_persona)


async def test_revoking_is_final(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    conv = world.conventions[RSA_CONVENTION]
    r = await client.post(
        f"/v1/conventions/{conv}/revoke",
        json={"reason": "fin"},
        headers=as_persona("departement_admin"),
    )
    assert r.json()["status"] == "revoked"
    assert not await _holds_rsa_in_amiens(client, world, as_persona)
    r = await client.post(
        f"/v1/conventions/{conv}/resume", json={}, headers=as_persona("departement_admin")
    )
    assert r.status_code == 409
    assert r.json()["code"] == "invalid-transition"
    assert r.json()["allowed_actions"] == []


async def _propose(
    client: httpx.AsyncClient, as_persona: Headers, persona: str, **body: Any
) -> httpx.Response:
    payload = {
        "reference": "CONV-TEST",
        "data_categories": ["identity", "contact"],
        "valid_from": "2026-01-01",
        **body,
    }
    return await client.post("/v1/conventions", json=payload, headers=as_persona(persona))


async def test_end_date_ends_the_holding_without_any_job(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    today = clock.today()
    r = await _propose(
        client,
        as_persona,
        "departement_admin",
        grantee_id=str(world.organisations["ccas_corbie"]),
        competences=["rsa"],
        communes=["80212"],
        valid_until=today.isoformat(),
    )
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "proposed"
    accepted = await client.post(
        f"/v1/conventions/{r.json()['id']}/accept", json={}, headers=as_persona("ccas_corbie_admin")
    )
    assert accepted.status_code == 200, accepted.text

    async def holders(on: date) -> list[str]:
        got = await client.get(
            "/v1/directory/competent",
            params={"competence": "rsa", "commune": "80212", "on": on.isoformat()},
        )
        return [h["organisation"]["name"] for h in got.json()["holders"]]

    assert (await holders(today))[0] == "CCAS de Corbie"
    assert "CCAS de Corbie" not in await holders(today + timedelta(days=1))


async def test_rules_name_the_offending_item(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    r = await _propose(
        client,
        as_persona,
        "departement_admin",
        grantee_id=str(world.organisations["secours_populaire"]),
        competences=["rsa", "ase", "apa", "aide_facultative"],
        communes=["80021", "59350"],
    )
    assert r.status_code == 422
    errors = {e["pointer"]: e["detail"] for e in r.json()["errors"]}
    assert "not delegable" in errors["/competences/1"]  # ase
    assert "cannot be delegated to a association" in errors["/competences/2"]  # apa
    assert "does not hold" in errors["/competences/3"]  # aide_facultative: not the département's
    assert "59350" in errors["/communes/1"]  # Lille is not in the Somme


async def test_a_delegate_cannot_re_delegate(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    r = await _propose(
        client,
        as_persona,
        "org_admin",  # CCAS d'Amiens holds RSA by convention only
        grantee_id=str(world.organisations["secours_populaire"]),
        competences=["rsa"],
        communes=["80021"],
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["pointer"] == "/competences/0"


async def test_wrong_side_is_403_and_wrong_state_409(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    conv = world.conventions[RSA_CONVENTION]
    r = await client.post(
        f"/v1/conventions/{conv}/suspend", json={}, headers=as_persona("org_admin")
    )
    assert r.status_code == 403
    r = await client.post(
        f"/v1/conventions/{conv}/accept", json={}, headers=as_persona("org_admin")
    )
    assert r.status_code == 409
    assert r.json()["allowed_actions"] == ["withdraw"]


async def test_third_party_sees_nothing_of_a_convention(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    conv = world.conventions[RSA_CONVENTION]
    listed = await client.get("/v1/conventions", headers=as_persona("cias_agent"))
    assert str(conv) not in listed.text
    r = await client.get(f"/v1/conventions/{conv}", headers=as_persona("cias_agent"))
    assert r.status_code == 404
    missing = await client.get(
        "/v1/conventions/00000000-0000-0000-0000-000000000000", headers=as_persona("cias_agent")
    )
    assert (
        r.json()["title"] == missing.json()["title"]
        and r.json()["detail"] == missing.json()["detail"]
    )
