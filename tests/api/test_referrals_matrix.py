"""The authorization matrix over referrals and orientations: every endpoint × every persona.

Each case starts from a person the CCAS d'Amiens follows, a referral it sent to the Secours
populaire, and an RSA orientation the département issued to the CCAS d'Amiens.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from tests.api.matrix import PERSONAS, Case
from tests.api.test_authorization_matrix import test_matrix as run_case
from tests.api.test_referrals import referral_body
from tests.world import World


def referral(suffix: str = "") -> Callable[[World], str]:
    return lambda w: f"/v1/referrals/{w.extra['referral']}{suffix}"


def orientation(suffix: str = "") -> Callable[[World], str]:
    return lambda w: f"/v1/orientations/{w.extra['orientation']}{suffix}"


_NO_REFERRALS_ROLE = {
    "departement_admin": 403,
    "pilotage": 403,
    "dpo": 403,
    "org_admin": 403,
    "platform_admin": 403,
    "client_without_scopes": 403,
}

CASES = [
    Case(
        "referral send",
        "POST",
        lambda w: "/v1/referrals",
        {
            "ccas_rsa_agent": 201,
            # joined the care team by break-glass in the set-up
            "departement_agent": 201,
            # the recipient sees the person, but may not refer them to itself
            "association_agent": 422,
            **_NO_REFERRALS_ROLE,
            "client_with_scopes": 403,
        },
        404,
        body=lambda w: referral_body(w, w.extra["person"]),
    ),
    Case(
        "referral list",
        "GET",
        lambda w: "/v1/referrals",
        _NO_REFERRALS_ROLE,
        200,
    ),
    Case(
        "referral read",
        "GET",
        referral(),
        {"ccas_rsa_agent": 200, "association_agent": 200, "org_admin": 403},
        404,
    ),
    Case(
        "referral acknowledge",
        "POST",
        referral("/acknowledge"),
        {"association_agent": 200, "ccas_rsa_agent": 403, "org_admin": 403},
        404,
        body=lambda w: {},
    ),
    Case(
        "referral withdraw",
        "POST",
        referral("/withdraw"),
        {"ccas_rsa_agent": 200, "association_agent": 403, "org_admin": 403},
        404,
        body=lambda w: {},
    ),
    Case(
        "referral messages",
        "GET",
        referral("/messages"),
        {"ccas_rsa_agent": 200, "association_agent": 200, "org_admin": 403},
        404,
    ),
    Case(
        "referral message add",
        "POST",
        referral("/messages"),
        {"ccas_rsa_agent": 201, "association_agent": 201, "org_admin": 403},
        404,
        body=lambda w: {"body": "Bonjour"},
    ),
    Case(
        "orientation issue",
        "POST",
        lambda w: "/v1/orientations",
        {
            "departement_agent": 201,
            "departement_admin": 403,
            "pilotage": 403,
            "dpo": 403,
            "org_admin": 403,
            "platform_admin": 403,
            "client_with_scopes": 403,
            "client_without_scopes": 403,
            # the CCAS follows the person, holds rsa there, and may orient to the département
            "ccas_rsa_agent": 201,
            # attached by the referral it received, but holds no rsa there
            "association_agent": 422,
        },
        404,
        body=lambda w: {
            "beneficiary_id": w.extra["person"],
            "competence": "rsa",
            "reason": "Orientation sociale.",
        },
    ),
    Case(
        "orientation list",
        "GET",
        lambda w: "/v1/orientations",
        {**_NO_REFERRALS_ROLE, "client_with_scopes": 403},
        200,
    ),
    Case(
        "orientation read",
        "GET",
        orientation(),
        {
            "departement_agent": 200,
            "ccas_rsa_agent": 200,
            "departement_admin": 403,
            "pilotage": 403,
            "dpo": 403,
            "org_admin": 403,
            "client_with_scopes": 403,
            "client_without_scopes": 403,
        },
        404,
    ),
    Case(
        "orientation accept",
        "POST",
        orientation("/accept"),
        {
            "ccas_rsa_agent": 200,
            "departement_agent": 403,
            "departement_admin": 403,
            "pilotage": 403,
            "dpo": 403,
            "org_admin": 403,
            "client_with_scopes": 403,
            "client_without_scopes": 403,
        },
        404,
        body=lambda w: {},
    ),
]


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
async def test_referrals_matrix(
    case: Case,
    persona: str,
    client: httpx.AsyncClient,
    world: World,
    as_persona: Callable[[str], dict[str, str]],
) -> None:
    ccas = as_persona("ccas_rsa_agent")
    created = await client.post(
        "/v1/beneficiaries",
        json={
            "competence": "rsa",
            "birth_name": "Matrice",
            "first_names": "Test",
            "birth_date": "1960-03-03",
            "sex": "X",
            "commune": "80021",
        },
        headers=ccas,
    )
    assert created.status_code == 201, created.text
    world.extra["person"] = created.json()["id"]
    sent = await client.post(
        "/v1/referrals", json=referral_body(world, world.extra["person"]), headers=ccas
    )
    assert sent.status_code == 201, sent.text
    world.extra["referral"] = sent.json()["id"]
    # the département joins by break-glass (legal holder of rsa), then orients to the CCAS
    departement = as_persona("departement_agent")
    joined = await client.post(
        f"/v1/beneficiaries/{world.extra['person']}/care-team",
        json={"competence": "rsa", "justification": "Instruction RSA en cours."},
        headers=departement,
    )
    assert joined.status_code == 201, joined.text
    oriented = await client.post(
        "/v1/orientations",
        json={
            "beneficiary_id": world.extra["person"],
            "competence": "rsa",
            "target_organisation_id": str(world.organisations["ccas_amiens"]),
            "reason": "Référent de proximité.",
        },
        headers=departement,
    )
    assert oriented.status_code == 201, oriented.text
    world.extra["orientation"] = oriented.json()["id"]
    await run_case(case, persona, client, world, as_persona)
