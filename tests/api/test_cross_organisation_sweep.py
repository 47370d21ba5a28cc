"""A generated cross-organisation sweep (issue #10): every route of the app that takes an id
of something about a person, walked from ``ROUTERS``, asked by every persona of the
organisations that have no business with that person.

* every GET answers 404, exactly as for an id that does not exist;
* every other method writes nothing (no 2xx), and the organisations that may not even
  discover the person (outside their ``accueil`` territory) get exactly the answer a random
  id gets: status and problem code, so no answer is an existence oracle.

The ids come from one scenario of the CCAS d'Amiens (a person followed for rsa with a draft
dossier, a note, a consent, a referral to the Secours populaire and the CIAS's access request;
a person granted an aid under its règlement, paid by voucher; a commission session) and from
a convention between two other partners. Organisation and territory routes are
public directories and are left out; a route whose id the scenario cannot fill fails the
sweep until it is given one (or listed in ``NOT_ABOUT_PEOPLE`` with a reason).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

import httpx
from fastapi.routing import APIRoute
from sqlalchemy.engine import URL

from api.main import ROUTERS
from tests.api.aids_support import add_personas, generous_rules
from tests.api.test_aid_payments import pay
from tests.store.test_security_inventory import _aid_scenario, _scenario
from tests.world import World

Headers = Callable[[str], dict[str, str]]

#: organisations with no business with the scenario's person, and whether they hold accueil
#: on Amiens (then /search may show them a preview, and a write may be refused differently)
OUTSIDERS = {
    "ccas_agent": False,  # CCAS de Corbie
    "ccas_corbie_admin": False,
    "platform_admin": False,
    "departement_agent": True,
    "departement_admin": True,
    "departement_sensitive": True,
    "dpo": True,
    "pilotage": True,
    "mission_locale_agent": True,
    "client_with_scopes": True,
    "client_without_scopes": True,
}

#: path parameters that name no person's record: public directories, the caller's own
#: organisation's settings (organisation, members, API clients, holdings, webhooks), public
#: règlements, the caller's own aid envelopes of a year, and the statistics measures (aggregates
#: under disclosure control, tested in tests/api/test_statistics.py)
NOT_ABOUT_PEOPLE = {
    "measure",
    "code",
    "siren",
    "organisation_id",
    "user_id",
    "client_id",
    "webhook_id",
    "rules_id",
    "year",
}

#: bodies that pass validation, so that the handler (not the schema) answers
BODIES: dict[str, Any] = {
    "care-team": {"competence": "aide_facultative", "justification": "balayage"},
    "notes": {"competence": "aide_facultative", "visibility": "team", "body": "balayage"},
    "household": {"members": []},
    "budget": {"resources": [], "charges": []},
    "access-requests": {"competence": "aide_facultative", "reason": "balayage"},
    "messages": {"body": "balayage"},
    "merge": {"duplicate_id": str(uuid.uuid4())},
}


#: query parameters some readings require (a DPO states a purpose)
QUERIES: dict[str, dict[str, str]] = {
    "export": {"purpose": "balayage"},
    "access-log": {"purpose": "balayage"},
}


def _cases() -> list[tuple[str, str]]:
    found = []
    for router in ROUTERS:
        for route in router.routes:
            assert isinstance(route, APIRoute)
            params = set(re.findall(r"\{(\w+)", route.path))
            if not params or params & NOT_ABOUT_PEOPLE:
                continue
            found += [(method, route.path) for method in sorted(route.methods)]
    return found


def _fill(path: str, ids: dict[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "request_id" and path.startswith("/v1/aid-requests/"):
            name = "aid_request_id"  # the same name as an access request's, another record
        assert name in ids, f"the sweep cannot fill {{{name}}} in {path}: give it an id"
        return ids[name]

    return re.sub(r"\{(\w+)(?::\w+)?\}", one, path)


def _answer(r: httpx.Response) -> tuple[int, str | None]:
    code = r.json().get("code") if r.headers.get("content-type", "").endswith("json") else None
    return r.status_code, code if isinstance(code, str) else None


async def _aid_records(
    client: httpx.AsyncClient, world: World, as_persona: Headers, database_url: URL
) -> dict[str, str]:
    """An aid the CCAS d'Amiens granted and paid by voucher, and a commission session."""
    await add_personas(world, database_url)
    await generous_rules(client, as_persona)
    aid = await _aid_scenario(client, as_persona)
    paid = await pay(client, as_persona, str(aid["aid_request"]), "20")
    assert paid.status_code == 201, paid.text
    session = await client.post(
        "/v1/aid-commissions",
        json={"date": "2026-12-10", "body": "commission_permanente"},
        headers=as_persona("ccas_rsa_agent"),
    )
    assert session.status_code == 201, session.text
    return {
        "aid_request_id": str(aid["aid_request"]),
        "payment_id": str(paid.json()["id"]),
        "commission_id": str(session.json()["id"]),
    }


async def test_every_id_route_is_404_to_every_other_organisation(
    client: httpx.AsyncClient, world: World, as_persona: Headers, database_url: URL
) -> None:
    s = await _scenario(client, world, as_persona)
    team = await client.get(
        f"/v1/beneficiaries/{s['person']}/care-team", headers=as_persona("ccas_rsa_agent")
    )
    requests = await client.get(
        "/v1/access-requests", params={"box": "outbox"}, headers=as_persona("cias_agent")
    )
    real = {
        "beneficiary_id": str(s["person"]),
        "membership_id": str(team.json()[0]["id"]),
        "consent_id": str(s["consent"]),
        "request_id": str(requests.json()["items"][0]["id"]),
        "referral_id": str(s["referral"]),
        "dossier_id": str(s["dossier"]),
        "orientation_id": str(s["orientation"]),
        "convention_id": str(world.conventions["CONV-LONGUEAU-CIAS-2026"]),
        "action": "acknowledge",
    }
    real |= await _aid_records(client, world, as_persona, database_url)
    random = {k: (v if k == "action" else str(uuid.uuid4())) for k, v in real.items()}
    cases = _cases()
    assert len(cases) > 30, cases
    leaks = []
    for method, path in cases:
        last = path.rstrip("/").rsplit("/", 1)[-1]
        body, query = BODIES.get(last, {}), QUERIES.get(last)
        for persona, discovers in OUTSIDERS.items():
            answers = []
            for ids in (real, random):
                headers = {
                    **as_persona(persona),
                    "Idempotency-Key": str(uuid.uuid4()),
                    "If-Match": '"1"',
                }
                r = await client.request(
                    method,
                    _fill(path, ids),
                    json=None if method in ("GET", "DELETE") else body,
                    params=query,
                    headers=headers,
                )
                answers.append(_answer(r))
            (status, _), unknown = answers
            if (
                (method == "GET" and status != 404)
                or 200 <= status < 300
                or (not discovers and answers[0] != unknown)
            ):
                leaks.append((persona, method, path, answers))
    assert leaks == [], "\n".join(map(str, leaks))
