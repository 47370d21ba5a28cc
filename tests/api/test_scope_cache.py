"""A process reuses the scopes it built while the access version is unchanged, and a change
to what a scope is built from (here a revoked convention) takes effect at the next request."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from api.auth import builder
from tests.api.matrix import RSA_CONVENTION
from tests.world import World

Headers = Callable[[str], dict[str, str]]


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    """Each scope the builder makes from the database (a cache miss), in order."""
    made: list[tuple[str, Any]] = []
    build = builder._build

    async def counted(session: Any, kind: str, principal: Any, organisation: Any) -> Any:
        made.append((kind, principal))
        return await build(session, kind, principal, organisation)

    monkeypatch.setattr(builder, "_build", counted)
    builder.SCOPES.clear()
    return made


async def test_a_revoked_convention_ends_access_at_the_next_request(
    client: httpx.AsyncClient, world: World, as_persona: Headers, builds: list[Any]
) -> None:
    agent = as_persona("ccas_rsa_agent")  # the CCAS d'Amiens holds rsa there by convention
    created = await client.post(
        "/v1/beneficiaries",
        json={
            "competence": "rsa",
            "birth_name": "Cache",
            "first_names": "Scope",
            "birth_date": "1961-03-09",
            "sex": "F",
            "commune": "80021",
        },
        headers=agent,
    )
    assert created.status_code == 201, created.text
    person = f"/v1/beneficiaries/{created.json()['id']}"
    assert (await client.get(person, headers=agent)).status_code == 200
    assert (await client.get(person, headers=agent)).status_code == 200
    assert len(builds) == 1  # built once, then reused while nothing changed

    revoked = await client.post(
        f"/v1/conventions/{world.conventions[RSA_CONVENTION]}/revoke",
        json={"reason": "fin"},
        headers=as_persona("departement_admin"),
    )
    assert revoked.status_code == 200, revoked.text
    assert (await client.get(person, headers=agent)).status_code == 404
    assert len(builds) == 3  # the admin's scope, then the agent's again


async def test_me_answers_the_same_from_the_cache(
    client: httpx.AsyncClient, as_persona: Headers, builds: list[Any]
) -> None:
    first = await client.get("/v1/me", headers=as_persona("ccas_rsa_agent"))
    second = await client.get("/v1/me", headers=as_persona("ccas_rsa_agent"))
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert first.json()["email"] == "agent.ccas-amiens@somme.demo"
    assert len(builds) == 1
