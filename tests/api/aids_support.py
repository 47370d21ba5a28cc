"""Shared helpers of the aid tests: demo users outside the shared personas, two règlements
(a generous CCAS d'Amiens, a strict CCAS de Corbie), people with a household budget."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.engine import URL

from api.db.engine import owner_connection
from tests.world import Persona, World

Headers = Callable[[str], dict[str, str]]

#: after the demo's versions (2026-01-01), so these are the ones in force in the tests
VALID_FROM = "2026-06-01"
ON = "2026-07-01"

# demo users the aid tests need: persona → (e-mail, organisation key)
AID_PERSONAS = {
    "ccas_decideur": ("decideur.ccas-amiens@somme.demo", "ccas_amiens"),
    "ccas_admin": ("admin.ccas-amiens@somme.demo", "ccas_amiens"),
    "corbie_admin": ("admin.ccas-corbie@somme.demo", "ccas_corbie"),
}


async def add_personas(world: World, database_url: URL) -> None:
    missing = {k: v for k, v in AID_PERSONAS.items() if k not in world.personas}
    if not missing:
        return
    async with owner_connection(database_url) as conn:
        for name, (email, org_key) in missing.items():
            organisation = world.organisations[org_key]
            row = (
                await conn.execute(
                    text(
                        "SELECT u.id, m.roles FROM app_user u JOIN membership m "
                        "ON m.user_id = u.id WHERE u.email = :e AND m.organisation_id = :o"
                    ),
                    {"e": email, "o": organisation},
                )
            ).one()
            world.personas[name] = Persona(name, "user", row.id, organisation, tuple(row.roles))


def tiers(agent: int, decideur: int) -> list[dict[str, Any]]:
    return [
        {"up_to": agent, "by": "agent"},
        {"up_to": decideur, "by": "decideur"},
        {"up_to": None, "by": "commission"},
    ]


GENEROUS = {
    "title": "Règlement des aides facultatives du CCAS d'Amiens",
    "valid_from": VALID_FROM,
    "max_per_household_12_months": 600,
    "aids": [
        {
            "code": "bon_alimentaire",
            "label": "Bon alimentaire",
            "competence": "aide_alimentaire",
            "category": "alimentation",
            "forms": ["bon", "nature"],
            "max_per_request": 150,
            "max_per_household_12_months": 400,
            "max_requests_12_months": 4,
            "reste_a_vivre_max": 12,
            "decision": tiers(80, 300),
            "emergency_up_to": 150,
        },
        {
            "code": "aide_energie",
            "label": "Aide à l'énergie",
            "competence": "aide_facultative",
            "category": "energie",
            "forms": ["paiement_tiers"],
            "max_per_request": 300,
            "reste_a_vivre_max": 10,
            "decision": tiers(80, 200),
        },
    ],
}

STRICT = {
    "title": "Règlement des aides facultatives du CCAS de Corbie",
    "valid_from": VALID_FROM,
    "aids": [
        {
            "code": "bon_alimentaire",
            "label": "Bon alimentaire",
            "competence": "aide_alimentaire",
            "category": "alimentation",
            "forms": ["bon"],
            "max_per_request": 80,
            "reste_a_vivre_max": 6,
            "decision": [{"up_to": None, "by": "decideur"}],
        },
        {
            "code": "aide_energie",
            "label": "Aide à l'énergie",
            "competence": "aide_facultative",
            "category": "energie",
            "forms": ["paiement_tiers"],
            "max_per_request": 150,
            "max_per_household_12_months": 100,
            "reste_a_vivre_max": 5,
            "decision": [{"up_to": None, "by": "commission"}],
        },
    ],
}


async def publish(
    client: httpx.AsyncClient, as_persona: Headers, body: dict[str, Any], persona: str
) -> httpx.Response:
    return await client.post("/v1/aid-rules", json=body, headers=as_persona(persona))


async def generous_rules(
    client: httpx.AsyncClient, as_persona: Headers, valid_from: str = VALID_FROM
) -> str:
    """The generous règlement of the CCAS d'Amiens (a committing test passes a start of its
    own: versions of one organisation start on different days)."""
    r = await publish(client, as_persona, {**GENEROUS, "valid_from": valid_from}, "ccas_admin")
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def aid_person(
    client: httpx.AsyncClient,
    as_persona: Headers,
    *,
    persona: str = "ccas_rsa_agent",
    competence: str = "aide_alimentaire",
    resources: str = "900",
    charges: str = "600",
    commune: str = "80021",
) -> str:
    """A person of Amiens the CCAS follows for ``competence``, living alone, with a budget
    (reste à vivre 10.00 € per day per UC by default)."""
    tag = uuid.uuid4()
    r = await client.post(
        "/v1/beneficiaries",
        json={
            "competence": competence,
            "birth_name": "Aide",
            "first_names": f"P{tag.hex[:10]}",
            "birth_date": (date(1940, 1, 1) + timedelta(days=tag.int % 25_000)).isoformat(),
            "sex": "F",
            "commune": commune,
        },
        headers=as_persona(persona),
    )
    assert r.status_code == 201, r.text
    person = str(r.json()["id"])
    budget = await client.put(
        f"/v1/beneficiaries/{person}/budget",
        json={
            "resources": [{"type": "salaire", "monthly_amount": resources}],
            "charges": [{"type": "loyer", "monthly_amount": charges}],
        },
        headers=as_persona(persona),
    )
    assert budget.status_code == 200, budget.text
    return person
