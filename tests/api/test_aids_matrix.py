"""The authorization matrix of aides facultatives: endpoint × persona → expected status.

Each case runs in its own rolled-back transaction on the generous règlement of the CCAS
d'Amiens, one person of Amiens it follows for food aid, a draft, a submitted and a granted
(and partly paid) request of that person, and a commission session. The CCAS's decideur
joins the shared personas; règlements and the comparison are public."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import URL

from tests.api.aids_support import GENEROUS, add_personas, aid_person, generous_rules
from tests.api.matrix import PERSONAS, Case
from tests.api.test_aid_requests import act, open_request
from tests.api.test_authorization_matrix import test_matrix as run_case
from tests.world import World

Headers = Callable[[str], dict[str, str]]
DECIDEUR = "ccas_decideur"
# the CCAS d'Amiens's people: its agent and its decideur see and act
CCAS = {"ccas_rsa_agent": 200, DECIDEUR: 200}
# an organisation that has no envelope yet: the ETag of nothing
NO_ENVELOPE = '"e3b0c44298fc1c14"'
# roles without any aid action: the organisation's own admin sees no personal data
NO_AIDS_ROLE = {"pilotage": 403, "dpo": 403, "platform_admin": 403}
CLIENTS = {"client_with_scopes": 403, "client_without_scopes": 403}


def extra(key: str, suffix: str = "") -> Callable[[World], str]:
    return lambda w: f"{w.extra[key]}{suffix}"


def request(state: str, suffix: str = "") -> Callable[[World], str]:
    return lambda w: f"/v1/aid-requests/{w.extra[state]}{suffix}"


def session(suffix: str = "") -> Callable[[World], str]:
    return lambda w: f"/v1/aid-commissions/{w.extra['session']}{suffix}"


def _later_rules(w: World) -> dict[str, Any]:
    return {**GENEROUS, "valid_from": "2026-08-01"}


AIDS_CASES = [
    Case(
        "rules publish",
        "POST",
        lambda w: "/v1/aid-rules",
        # the département may not grant aide_alimentaire: 422 naming the item
        {"org_admin": 201, "departement_admin": 422},
        403,
        body=_later_rules,
    ),
    Case("rules read", "GET", extra("rules", ""), {}, 200, public=True),
    Case("rules list", "GET", lambda w: "/v1/aid-rules?commune=80021", {}, 200, public=True),
    Case(
        "rules compare",
        "POST",
        lambda w: "/v1/aid-rules/compare",
        {},
        200,
        public=True,
        body=lambda w: {
            "communes": ["80021"],
            "household": {"adults": 1, "monthly_resources": 900, "monthly_charges": 600},
        },
    ),
    Case(
        "request create",
        "POST",
        lambda w: "/v1/aid-requests",
        {"ccas_rsa_agent": 201, DECIDEUR: 201},
        404,
        body=lambda w: {
            "beneficiary_id": w.extra["person"],
            "aid_code": "bon_alimentaire",
            "amount_asked": "50",
            "form": "bon",
            "reason": "matrice",
        },
    ),
    Case("requests list", "GET", lambda w: "/v1/aid-requests", {}, 200),
    Case("request read", "GET", request("granted"), CCAS, 404),
    Case(
        "request edit",
        "PATCH",
        request("draft"),
        CCAS,
        404,
        body=lambda w: {"amount_asked": "55"},
        headers={"If-Match": '"1"'},
    ),
    Case("request submit", "POST", request("draft", "/submit"), CCAS, 404, body=lambda w: {}),
    Case(
        "request schedule",
        "POST",
        request("submitted", "/schedule"),
        CCAS,
        404,
        body=lambda w: {"session_id": w.extra["session"]},
    ),
    Case(
        "request grant",
        "POST",
        request("submitted", "/grant"),
        CCAS,
        404,
        body=lambda w: {"amount": "40"},
    ),
    Case(
        "request refuse",
        "POST",
        request("submitted", "/refuse"),
        CCAS,
        404,
        body=lambda w: {"reason_code": "hors_reglement"},
    ),
    Case(
        "request adjourn",
        "POST",
        request("submitted", "/adjourn"),
        CCAS,
        404,
        body=lambda w: {"comment": "Pièce manquante"},
    ),
    Case("request cancel", "POST", request("draft", "/cancel"), CCAS, 404, body=lambda w: {}),
    Case(
        "payment create",
        "POST",
        request("granted", "/payments"),
        {"ccas_rsa_agent": 201, DECIDEUR: 201},
        404,
        body=lambda w: {"amount": "10", "form": "bon", "paid_on": "2026-11-20"},
    ),
    Case(
        "payment cancel",
        "POST",
        lambda w: f"/v1/aid-payments/{w.extra['payment']}/cancel",
        # the payment is its organisation's: its admin sees it but may not cancel it
        {**CCAS, "org_admin": 403},
        404,
    ),
    Case(
        "payments export",
        "GET",
        lambda w: "/v1/aid-payments?from=2026-01-01&to=2026-12-31",
        # every agent reads its own organisation's payments; no other role
        {**NO_AIDS_ROLE, **CLIENTS, "org_admin": 403, "departement_admin": 403},
        200,
    ),
    Case(
        "envelopes read",
        "GET",
        lambda w: "/v1/aid-envelopes/2026",
        {**NO_AIDS_ROLE, **CLIENTS},
        200,
    ),
    Case(
        "envelopes vote",
        "PUT",
        lambda w: "/v1/aid-envelopes/2026",
        {DECIDEUR: 200, "org_admin": 200, "departement_admin": 200},
        403,
        body=lambda w: {"items": [{"category": "alimentation", "amount": 1000}]},
        headers={"If-Match": NO_ENVELOPE},
    ),
    Case(
        "commission create",
        "POST",
        lambda w: "/v1/aid-commissions",
        # any agent opens a session of its own organisation
        {**NO_AIDS_ROLE, **CLIENTS, "org_admin": 403, "departement_admin": 403},
        201,
        body=lambda w: {"date": "2026-12-17", "body": "commission_permanente"},
    ),
    Case("commission read", "GET", session(), {**CCAS, "org_admin": 403}, 404),
    Case(
        "commission decisions",
        "POST",
        session("/decisions"),
        {DECIDEUR: 200, "ccas_rsa_agent": 403, "org_admin": 403},
        404,
        body=lambda w: {"items": [{"request_id": w.extra["submitted"], "decision": "adjourned"}]},
    ),
    Case(
        "commission close",
        "POST",
        session("/close"),
        {DECIDEUR: 200, "ccas_rsa_agent": 403, "org_admin": 403},
        404,
    ),
    Case("commission minutes", "GET", session("/minutes"), {**CCAS, "org_admin": 403}, 404),
]


@pytest.mark.parametrize("persona", [*PERSONAS, DECIDEUR])
@pytest.mark.parametrize("case", AIDS_CASES, ids=lambda c: c.name)
async def test_aids_matrix(
    case: Case,
    persona: str,
    client: httpx.AsyncClient,
    world: World,
    as_persona: Headers,
    database_url: URL,
) -> None:
    await add_personas(world, database_url)
    rules = await generous_rules(client, as_persona)
    person = await aid_person(client, as_persona)
    states = {}
    for state in ("draft", "submitted", "granted"):
        created = await open_request(client, as_persona, person)
        assert created.status_code == 201, created.text
        states[state] = created.json()["id"]
    for state in ("submitted", "granted"):
        assert (await act(client, as_persona, states[state], "submit")).is_success
    assert (
        await act(client, as_persona, states["granted"], "grant", body={"amount": "60"})
    ).is_success
    paid = await client.post(
        f"/v1/aid-requests/{states['granted']}/payments",
        json={"amount": "20", "form": "bon", "paid_on": "2026-11-20"},
        headers=as_persona("ccas_rsa_agent"),
    )
    opened = await client.post(
        "/v1/aid-commissions",
        json={"date": "2026-12-10", "body": "commission_permanente"},
        headers=as_persona("ccas_rsa_agent"),
    )
    world.extra.update(
        states,
        person=person,
        rules=f"/v1/aid-rules/{rules}",
        payment=paid.json()["id"],
        session=opened.json()["id"],
    )
    await run_case(case, persona, client, world, as_persona)
