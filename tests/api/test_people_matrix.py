"""The authorization matrix of consents, timeline, merge, export, the DPO's access log and
retention settings: anonymous 401, another organisation 404, wrong role 403, permitted 2xx.

The person is created by the CCAS d'Amiens with a duplicate record and a consent, and the
département joins their care team for rsa, so that its DPO and admin are in the team."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.api.matrix import PERSONAS, Case
from tests.api.test_authorization_matrix import test_matrix as run_case
from tests.world import World


def _path(suffix: str) -> Callable[[World], str]:
    return lambda w: f"/v1/beneficiaries/{w.extra['person']}{suffix}"


def _retention(w: World) -> str:
    return f"/v1/organisations/{w.organisations['departement']}/retention"


_READERS = {"ccas_rsa_agent": 200, "departement_agent": 200, "client_with_scopes": 200}
# attached organisations whose roles read nothing of the person: 403 where the action
# only needs attachment (export), 404 where it needs to read the record
_ATTACHED = [
    "ccas_rsa_agent",
    "org_admin",
    "departement_agent",
    "departement_admin",
    "pilotage",
    "dpo",
    "client_with_scopes",
    "client_without_scopes",
]

CASES = [
    Case("consents list", "GET", _path("/consents"), _READERS, 404),
    Case(
        "consent record",
        "POST",
        _path("/consents"),
        {"ccas_rsa_agent": 201, "departement_agent": 201, "client_with_scopes": 403},
        404,
        body=lambda w: {
            "kind": "information",
            "purpose": "information au guichet",
            "method": "oral",
            "given_on": "2026-01-02",
        },
    ),
    Case(
        "consent withdraw",
        "POST",
        lambda w: f"/v1/beneficiaries/{w.extra['person']}/consents/{w.extra['consent']}/withdraw",
        {"ccas_rsa_agent": 200, "departement_agent": 200, "client_with_scopes": 403},
        404,
        body=lambda w: {"reason": "retrait exprimé au guichet"},
    ),
    Case("timeline", "GET", _path("/timeline"), _READERS, 404),
    Case(
        "merge",
        "POST",
        _path("/merge"),
        # the département follows the person, not the duplicate
        {"ccas_rsa_agent": 200},
        404,
        body=lambda w: {
            "duplicate_id": w.extra["duplicate"],
            "justification": "même personne, vérifiée au guichet",
        },
    ),
    Case(
        "export",
        "GET",
        _path("/export?purpose=droit%20d%27acc%C3%A8s"),
        {**dict.fromkeys(_ATTACHED, 403), "dpo": 200},
        404,
    ),
    Case(
        "access log as dpo",
        "GET",
        _path("/access-log?purpose=droit%20d%27acc%C3%A8s"),
        {**_READERS, "dpo": 200},
        404,
    ),
    Case("retention read", "GET", _retention, {"dpo": 200, "departement_admin": 200}, 403),
    Case(
        "retention edit",
        "PATCH",
        _retention,
        {"dpo": 200, "departement_admin": 200},
        403,
        body=lambda w: {"retention_months": 30},
        headers={"If-Match": '"1"'},
    ),
]


async def _post(client: httpx.AsyncClient, url: str, body: Any, headers: dict[str, str]) -> Any:
    r = await client.post(url, json=body, headers=headers)
    assert r.status_code in (200, 201), r.text
    return r.json()


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
async def test_people_records_matrix(
    case: Case,
    persona: str,
    client: httpx.AsyncClient,
    world: World,
    as_persona: Callable[[str], dict[str, str]],
) -> None:
    ccas = as_persona("ccas_rsa_agent")
    identity = {
        "competence": "aide_facultative",
        "birth_name": "Matrice",
        "first_names": "Essai",
        "birth_date": "1952-02-02",
        "sex": "X",
        "commune": "80021",
    }
    person = (await _post(client, "/v1/beneficiaries", identity, ccas))["id"]
    duplicate = await _post(
        client,
        "/v1/beneficiaries",
        {**identity, "force_create": True, "justification": "saisi deux fois"},
        ccas,
    )
    consent = await _post(
        client,
        f"/v1/beneficiaries/{person}/consents",
        {
            "kind": "consent",
            "competence": "rsa",
            "purpose": "partage avec le département",
            "method": "ecrit",
            "given_on": "2026-01-02",
        },
        ccas,
    )
    await _post(
        client,
        f"/v1/beneficiaries/{person}/care-team",
        {"competence": "rsa", "justification": "ouverture de droits RSA"},
        as_persona("departement_agent"),
    )
    world.extra.update(person=person, duplicate=duplicate["id"], consent=consent["id"])
    await run_case(case, persona, client, world, as_persona)
