"""The authorization matrix of legal-aid dossiers: endpoint × persona → expected status.

Each case runs in its own rolled-back transaction, on three dossiers of one person of Amiens
instructed by the CCAS d'Amiens (RSA by convention): a submitted one and one under review by
the département, and the draft of another person. The département's decideur joins the
shared personas here."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from tests.api.matrix import PERSONAS, Case
from tests.api.test_authorization_matrix import test_matrix as run_case
from tests.api.test_dossiers import DECIDEUR, act, decideur, open_dossier, rsa_person
from tests.world import World

__all__ = ["decideur"]  # the fixture, from tests/api/test_dossiers.py

Headers = Callable[[str], dict[str, str]]

# the parties that see the dossiers once submitted: the instructing CCAS, the département
_VISIBLE = {
    "ccas_rsa_agent": 200,
    "departement_agent": 200,
    DECIDEUR: 200,
    "client_with_scopes": 200,
}


def dossier(state: str, suffix: str = "") -> Callable[[World], str]:
    return lambda w: f"/v1/dossiers/{w.extra[state]}{suffix}"


DOSSIER_CASES = [
    Case("dossier read", "GET", dossier("under_review"), _VISIBLE, 404),
    Case(
        "draft read",
        "GET",
        dossier("draft"),
        {"ccas_rsa_agent": 200},
        404,
    ),
    Case("dossiers list", "GET", lambda w: "/v1/dossiers", {}, 200),
    Case(
        "dossier create",
        "POST",
        lambda w: "/v1/dossiers",
        # both follow the person for rsa; the client's scope does not instruct
        {"ccas_rsa_agent": 201, "departement_agent": 201, DECIDEUR: 201, "client_with_scopes": 403},
        404,
        body=lambda w: {"beneficiary_id": w.extra["person"], "prestation": "rsa"},
    ),
    Case(
        "dossier instruction edit",
        "PATCH",
        dossier("submitted"),
        {
            "ccas_rsa_agent": 200,
            # the département sees it but the instruction is the CCAS's
            "departement_agent": 403,
            DECIDEUR: 403,
            "client_with_scopes": 403,
        },
        404,
        body=lambda w: {"instruction": {"household_size": 3}},
        headers={"If-Match": '"2"'},
    ),
    Case(
        "dossier submit",
        "POST",
        dossier("draft", "/submit"),
        {"ccas_rsa_agent": 200},
        404,
        body=lambda w: {},
    ),
    Case(
        "dossier review",
        "POST",
        dossier("submitted", "/review"),
        {**_VISIBLE, "ccas_rsa_agent": 403, "client_with_scopes": 403},
        404,
        body=lambda w: {},
    ),
    Case(
        "dossier decide",
        "POST",
        dossier("under_review", "/decide"),
        # the delegate instructs, the département decides (its decideur only)
        {"ccas_rsa_agent": 403, "departement_agent": 403, DECIDEUR: 200, "client_with_scopes": 403},
        404,
        body=lambda w: {"decision": "granted", "amount": "598.54"},
    ),
    Case(
        "dossiers sync",
        "POST",
        lambda w: "/v1/sync/dossiers",
        {"client_with_scopes": 200},
        403,
        body=lambda w: {
            "items": [
                {
                    "external_ref": {"system": "matrix", "id": "1"},
                    "beneficiary": {"id": w.extra["person"]},
                    "prestation": "rsa",
                    "status": "submitted",
                    "source_updated_at": "2026-11-01T00:00:00Z",
                }
            ]
        },
        headers={"Idempotency-Key": "matrix-sync"},
    ),
]


@pytest.mark.parametrize("persona", [*PERSONAS, DECIDEUR])
@pytest.mark.parametrize("case", DOSSIER_CASES, ids=lambda c: c.name)
async def test_dossier_matrix(
    case: Case,
    persona: str,
    client: httpx.AsyncClient,
    world: World,
    as_persona: Headers,
    decideur: str,
) -> None:
    person = await rsa_person(client, as_persona)
    # the draft is another person's: once the département follows a person for rsa (a
    # submitted dossier brings it), it sees all their rsa dossiers, drafts included
    other = await rsa_person(client, as_persona)
    states = {}
    for state, whose in (("draft", other), ("submitted", person), ("under_review", person)):
        created = await open_dossier(client, as_persona, whose)
        assert created.status_code == 201, created.text
        states[state] = created.json()["id"]
    for state in ("submitted", "under_review"):
        assert (await act(client, as_persona, states[state], "submit", "ccas_rsa_agent")).is_success
    assert (
        await act(client, as_persona, states["under_review"], "review", "departement_agent")
    ).is_success
    world.extra.update(states, person=person)
    await run_case(case, persona, client, world, as_persona)
