"""Runs the matrix of tests/api/matrix.py: every endpoint × every persona."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from tests.api.matrix import CASES, PEOPLE_CASES, PERSONAS, STAFF_CASES, Case
from tests.world import World


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
async def test_matrix(
    case: Case,
    persona: str,
    client: httpx.AsyncClient,
    world: World,
    as_persona: Callable[[str], dict[str, str]],
) -> None:
    r = await client.request(
        case.method,
        case.path(world),
        headers={**as_persona(persona), **case.headers},
        json=case.body(world) if case.body else None,
    )
    expected = case.status_for(persona)
    assert r.status_code == expected, f"{case.name} as {persona}: {r.status_code} {r.text[:300]}"
    if expected == 401:
        assert r.headers["www-authenticate"].startswith("Bearer")
    if expected >= 400:
        assert r.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("case", PEOPLE_CASES, ids=lambda c: c.name)
async def test_people_matrix(
    case: Case,
    persona: str,
    client: httpx.AsyncClient,
    world: World,
    as_persona: Callable[[str], dict[str, str]],
) -> None:
    created = await client.post(
        "/v1/beneficiaries",
        json={
            "competence": "aide_facultative",
            "birth_name": "Personne",
            "first_names": "Test",
            "birth_date": "1950-01-01",
            "sex": "X",
            "commune": "80021",
        },
        headers=as_persona("ccas_rsa_agent"),
    )
    assert created.status_code == 201, created.text
    world.extra["person"] = created.json()["id"]
    await test_matrix(case, persona, client, world, as_persona)


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("case", STAFF_CASES, ids=lambda c: c.name)
async def test_staff_matrix(
    case: Case,
    persona: str,
    client: httpx.AsyncClient,
    world: World,
    as_persona: Callable[[str], dict[str, str]],
) -> None:
    ccas = world.organisations["ccas_amiens"]
    agent = world.personas["ccas_rsa_agent"].principal_id
    asked = await client.patch(
        f"/v1/organisations/{ccas}/members/{agent}",
        json={"roles": ["agent", "dpo"]},
        headers=as_persona("org_admin"),
    )
    assert asked.status_code == 202, asked.text
    world.extra["grant"] = asked.json()["pending_grant"]["id"]
    invited = await client.post(
        f"/v1/organisations/{ccas}/members",
        json={"email": "agent.ccas-corbie@somme.demo", "full_name": "Agent", "roles": ["agent"]},
        headers=as_persona("org_admin"),
    )
    assert invited.status_code == 201 and invited.json()["status"] == "invited", invited.text
    await test_matrix(case, persona, client, world, as_persona)
