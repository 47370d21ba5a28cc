"""Sample case files on Amiens, loaded through the API like the rest of the demo."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import httpx
from fastapi import FastAPI

from api.demo.loader import DemoClient, DemoResult, demo_email, expect_success


@dataclass(frozen=True)
class DemoPerson:
    """A sample person of Amiens, recorded by ``follower`` for ``competence``."""

    follower: str  # the demo user recording them (local part of the e-mail)
    competence: str
    birth_name: str
    first_names: str
    birth_date: str
    sex: str


PEOPLE = (
    DemoPerson("agent.ccas-amiens", "aide_facultative", "Dubois", "Sandrine", "1984-05-14", "F"),
    DemoPerson("agent.cd80", "rsa", "Martin", "Kévin", "1998-09-02", "M"),
    DemoPerson("agent.ccas-amiens", "rsa", "Petit", "Nadia", "1979-11-08", "F"),
)


async def load_demo_files(app: FastAPI, result: DemoResult) -> list[str]:
    """Sample case files on Amiens, through the API (idempotent: a person the follower
    already knows is left as it is): a family referred by the CCAS to the Secours populaire
    with its consent, accepted; an RSA beneficiary the département orients to the CCAS
    (proposed: an orientation, under ``/v1/orientations``, not a referral); an RSA dossier the
    CCAS instructed and submitted to the département. Returns one line per file created."""
    created: list[str] = []
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://demo") as client:
        api = DemoClient(client)
        ids: dict[str, str] = {}
        for person in PEOPLE:
            token = await api.token(demo_email(person.follower))
            found = await api.call(
                "GET",
                "/v1/beneficiaries/search",
                token,
                params={
                    "birth_date": person.birth_date,
                    "last_name": person.birth_name,
                    "first_name": person.first_names,
                },
            )
            expect_success(found)
            if any(p["attached"] for p in found.json()["items"]):
                continue
            r = await api.call(
                "POST",
                "/v1/beneficiaries",
                token,
                json={
                    "competence": person.competence,
                    "birth_name": person.birth_name,
                    "first_names": person.first_names,
                    "birth_date": person.birth_date,
                    "sex": person.sex,
                    "commune": "80021",
                    "nir_missing_reason": "non communiqué",
                },
            )
            expect_success(r)
            ids[person.birth_name] = r.json()["id"]
            created.append(f"{person.first_names} {person.birth_name}: {r.json()['id']}")

        ccas = await api.token(demo_email("agent.ccas-amiens"))
        if "Dubois" in ids:
            pid = ids["Dubois"]
            spf = str(result.organisations["secours_populaire"])
            expect_success(
                await api.call(
                    "PUT",
                    f"/v1/beneficiaries/{pid}/household",
                    ccas,
                    json={
                        "members": [
                            {"first_name": "Léo", "birth_date": "2012-03-01", "relation": "enfant"},
                            {
                                "first_name": "Inès",
                                "birth_date": "2016-07-19",
                                "relation": "enfant",
                            },
                        ]
                    },
                )
            )
            consent = await api.call(
                "POST",
                f"/v1/beneficiaries/{pid}/consents",
                ccas,
                json={
                    "kind": "consent",
                    "organisation_id": spf,
                    "purpose": "Orientation vers l'aide alimentaire",
                    "method": "ecrit",
                    "given_on": date(2026, 11, 2).isoformat(),
                },
            )
            expect_success(consent)
            referral = await api.call(
                "POST",
                "/v1/referrals",
                ccas,
                json={
                    "beneficiary_id": pid,
                    "competence": "aide_alimentaire",
                    "recipient_organisation_id": spf,
                    "need": {"code": "colis_alimentaire", "description": "Colis pour 3 personnes."},
                    "shared_categories": ["identity", "contact", "household"],
                    "consent_id": consent.json()["id"],
                },
            )
            expect_success(referral)
            association = await api.token(demo_email("agent.secours-populaire"))
            expect_success(
                await api.call(
                    "POST", f"/v1/referrals/{referral.json()['id']}/accept", association, json={}
                )
            )
        if "Martin" in ids:
            departement = await api.token(demo_email("agent.cd80"))
            expect_success(
                await api.call(
                    "POST",
                    "/v1/orientations",
                    departement,
                    json={
                        "beneficiary_id": ids["Martin"],
                        "competence": "rsa",
                        "category": "sociale",
                        "reason": "Accompagnement social de proximité.",
                    },
                )
            )
        if "Petit" in ids:
            dossier = await api.call(
                "POST",
                "/v1/dossiers",
                ccas,
                json={
                    "beneficiary_id": ids["Petit"],
                    "prestation": "rsa",
                    "instruction": {"household_size": 1, "housing": "locataire"},
                },
            )
            expect_success(dossier)
            expect_success(
                await api.call("POST", f"/v1/dossiers/{dossier.json()['id']}/submit", ccas, json={})
            )
    return created
