"""The demo's aides facultatives, through the API in-process: two different règlements (a
generous CCAS d'Amiens, a strict CCAS de Corbie), the CCAS d'Amiens's envelopes, one request
of the demo family of Amiens in each state, a commission session with its minutes, and
payments with vouchers. Idempotent: nothing is done when the CCAS d'Amiens's règlement
exists."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI

from api.demo.loader import DemoClient, DemoResult, demo_email, expect_success

VALID_FROM = "2026-01-01"


def _tiers(agent: int | None, decideur: int | None) -> list[dict[str, Any]]:
    tiers: list[dict[str, Any]] = []
    if agent is not None:
        tiers.append({"up_to": agent, "by": "agent"})
    if decideur is not None:
        tiers.append({"up_to": decideur, "by": "decideur"})
    return [*tiers, {"up_to": None, "by": "commission"}]


GENEROUS = {
    "title": "Règlement des aides facultatives du CCAS d'Amiens",
    "valid_from": VALID_FROM,
    "max_per_household_12_months": 1200,
    "aids": [
        {
            "code": "secours_urgence",
            "label": "Secours d'urgence",
            "competence": "aide_facultative",
            "category": "alimentation",
            "forms": ["bon", "cheque_accompagnement", "numeraire"],
            "max_per_request": 200,
            "max_requests_12_months": 6,
            "reste_a_vivre_max": 12,
            "decision": _tiers(80, 200),
            "emergency_up_to": 150,
        },
        {
            "code": "aide_energie",
            "label": "Aide au paiement des factures d'énergie",
            "competence": "aide_facultative",
            "category": "energie",
            "forms": ["paiement_tiers"],
            "max_per_request": 400,
            "max_per_household_12_months": 600,
            "reste_a_vivre_max": 10,
            "decision": _tiers(100, 300),
        },
        {
            "code": "aide_cantine",
            "label": "Prise en charge de la cantine scolaire",
            "competence": "aide_facultative",
            "category": "scolarite",
            "forms": ["paiement_tiers", "exoneration"],
            "max_per_request": 250,
            "reste_a_vivre_max": 11,
            "decision": _tiers(250, None),
        },
    ],
}

STRICT = {
    "title": "Règlement des aides facultatives du CCAS de Corbie",
    "valid_from": VALID_FROM,
    "max_per_household_12_months": 300,
    "aids": [
        {
            "code": "secours_urgence",
            "label": "Secours d'urgence",
            "competence": "aide_facultative",
            "category": "alimentation",
            "forms": ["bon"],
            "max_per_request": 80,
            "max_requests_12_months": 2,
            "reste_a_vivre_max": 6,
            "residence_months_min": 6,
            "decision": [{"up_to": None, "by": "decideur"}],
        },
        {
            "code": "aide_energie",
            "label": "Aide à l'énergie",
            "competence": "aide_facultative",
            "category": "energie",
            "forms": ["paiement_tiers"],
            "max_per_request": 150,
            "reste_a_vivre_max": 5,
            "decision": [{"up_to": None, "by": "commission"}],
        },
    ],
}

EDF = {"kind": "creditor", "name": "EDF Solidarité", "siret": "55208131766522"}


class _Desk:
    """The demo's calls as the CCAS d'Amiens's agent and decideur."""

    def __init__(self, api: DemoClient, agent: str, decideur: str) -> None:
        self.api, self.agent, self.decideur = api, agent, decideur

    async def call(self, path: str, body: dict[str, Any], *, decideur: bool = False) -> Any:
        r = await self.api.call("POST", path, self.decideur if decideur else self.agent, json=body)
        expect_success(r)
        return r.json()

    async def request(self, person: str, aid: str, amount: int, form: str, **extra: Any) -> str:
        body = {
            "beneficiary_id": person,
            "aid_code": aid,
            "amount_asked": amount,
            "form": form,
            "reason": "Demande de démonstration.",
            **extra,
        }
        return str((await self.call("/v1/aid-requests", body))["id"])

    async def act(
        self, request: str, action: str, body: dict[str, Any] | None = None, **kw: Any
    ) -> None:
        await self.call(f"/v1/aid-requests/{request}/{action}", body or {}, **kw)


async def _publish(api: DemoClient, result: DemoResult) -> bool:
    """Both règlements; False when the demo's aids exist already."""
    amiens = result.organisations["ccas_amiens"]
    listed = await api.client.get(
        "/v1/aid-rules", params={"organisation_id": str(amiens), "limit": 200}
    )
    expect_success(listed)
    if any(
        r["title"] == GENEROUS["title"] and r["valid_from"] == VALID_FROM
        for r in listed.json()["items"]
    ):
        return False
    for key, admin, rules in (
        ("ccas_amiens", "admin.ccas-amiens", GENEROUS),
        ("ccas_corbie", "admin.ccas-corbie", STRICT),
    ):
        token = await api.token(demo_email(admin), result.organisations[key])
        expect_success(await api.call("POST", "/v1/aid-rules", token, json=rules))
    return True


async def _family(api: DemoClient, agent: str) -> str | None:
    """The demo family of Amiens the CCAS follows (domain.md's Dubois household), with its
    budget: 1 250 € of resources, 820 € of charges, 2.1 consumption units."""
    found = await api.call(
        "GET",
        "/v1/beneficiaries/search",
        agent,
        params={"birth_date": "1984-05-14", "last_name": "Dubois", "first_name": "Sandrine"},
    )
    expect_success(found)
    attached = [p for p in found.json()["items"] if p["attached"]]
    if not attached:
        return None
    person = str(attached[0]["id"])
    budget = {
        "resources": [
            {"type": "salaire", "monthly_amount": "980"},
            {"type": "prestations_familiales", "monthly_amount": "270"},
        ],
        "charges": [
            {"type": "loyer", "monthly_amount": "560"},
            {"type": "energie", "monthly_amount": "160"},
            {"type": "assurances", "monthly_amount": "100"},
        ],
    }
    expect_success(await api.call("PUT", f"/v1/beneficiaries/{person}/budget", agent, json=budget))
    return person


async def load_aid_demo(app: FastAPI, result: DemoResult) -> list[str]:
    """See the module docstring; returns one line per thing created."""
    created: list[str] = []
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://demo") as client:
        api = DemoClient(client)
        if not await _publish(api, result):
            return created
        created.append("règlements: CCAS d'Amiens (généreux), CCAS de Corbie (strict)")
        amiens = result.organisations["ccas_amiens"]
        desk = _Desk(
            api,
            await api.token(demo_email("agent.ccas-amiens"), amiens),
            await api.token(demo_email("decideur.ccas-amiens"), amiens),
        )
        envelopes = await api.call("GET", "/v1/aid-envelopes/2026", desk.decideur)
        expect_success(envelopes)
        items = [
            {"category": "alimentation", "amount": 20000},
            {"category": "energie", "amount": 15000},
            {"amount": 45000},
        ]
        headers = {
            "Authorization": f"Bearer {desk.decideur}",
            "If-Match": envelopes.headers["etag"],
        }
        expect_success(
            await client.put("/v1/aid-envelopes/2026", json={"items": items}, headers=headers)
        )
        person = await _family(api, desk.agent)
        if person is None:
            return created
        created += await _requests(desk, person)
    return created


CANTINE = {"kind": "creditor", "name": "Ville d'Amiens — restauration scolaire"}


async def _requests(desk: _Desk, person: str) -> list[str]:
    made: dict[str, str] = {}
    made["draft"] = await desk.request(person, "aide_cantine", 120, "paiement_tiers", payee=CANTINE)
    for state in ("submitted", "adjourned", "cancelled", "refused", "granted", "paid"):
        made[state] = await desk.request(person, "secours_urgence", 60, "bon")
        await desk.act(made[state], "submit")
    await desk.act(made["adjourned"], "adjourn", {"comment": "Justificatif de ressources attendu."})
    await desk.act(made["cancelled"], "cancel")
    await desk.act(made["refused"], "refuse", {"reason_code": "autre_dispositif"})
    await desk.act(made["granted"], "grant", {"amount": 60})
    await desk.act(made["paid"], "grant", {"amount": 60})
    vouchers = []
    for request, amount, day in (
        (made["paid"], 30, "2026-11-20"),
        (made["paid"], 30, "2026-11-27"),
        (made["granted"], 20, "2026-11-27"),
    ):
        payment = {"amount": amount, "form": "bon", "paid_on": day}
        paid = await desk.call(f"/v1/aid-requests/{request}/payments", payment)
        vouchers.append(paid["voucher_number"])
    # a session that decided an energy bill and closed; the next one, with its agenda
    held = await desk.call(
        "/v1/aid-commissions", {"date": "2026-11-26", "body": "commission_permanente"}
    )
    coming = await desk.call(
        "/v1/aid-commissions", {"date": "2026-12-17", "body": "commission_permanente"}
    )
    decided = await desk.request(person, "aide_energie", 240, "paiement_tiers", payee=EDF)
    made["scheduled"] = await desk.request(
        person, "aide_energie", 350, "paiement_tiers", payee={**EDF, "reference": "FACT-118"}
    )
    for request, session in ((decided, held), (made["scheduled"], coming)):
        await desk.act(request, "submit")
        await desk.act(request, "schedule", {"session_id": session["id"]})
    decision = {"request_id": decided, "decision": "granted", "amount": 240}
    await desk.call(
        f"/v1/aid-commissions/{held['id']}/decisions", {"items": [decision]}, decideur=True
    )
    await desk.call(f"/v1/aid-commissions/{held['id']}/close", {}, decideur=True)
    lines = [f"aid request {state}: {rid}" for state, rid in made.items()]
    lines.append(f"commission minutes: /v1/aid-commissions/{held['id']}/minutes")
    lines.append(f"next commission's agenda: /v1/aid-commissions/{coming['id']}")
    lines.append(f"vouchers: {', '.join(vouchers)}")
    return lines
