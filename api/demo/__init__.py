"""The demo territory: the Somme (80), its partners, conventions and one user per role.

Loaded through the public API in-process (every rule the service enforces applies), as the
platform operator and then as each organisation's admin. Idempotent: organisations found by
name are reused, existing members and conventions are left as they are; the two API clients
are replaced at every load (a secret can only be shown when it is created).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import httpx
from fastapi import FastAPI

DEMO_PASSWORD = "guichet-demo-2026"  # noqa: S105 - printed for the demo
PLATFORM_ADMIN = "admin@plateforme.demo"


@dataclass(frozen=True)
class DemoOrganisation:
    key: str
    name: str
    kind: str
    place: dict[str, Any]
    members: dict[str, list[str]]  # e-mail local part → roles


ORGANISATIONS = (
    DemoOrganisation(
        "departement",
        "Conseil départemental de la Somme",
        "departement",
        {"departement": "80"},
        {
            "agent.cd80": ["agent"],
            "decideur.cd80": ["decideur"],
            "sensible.cd80": ["agent", "sensitive"],
            "pilotage.cd80": ["pilotage"],
            "dpo.cd80": ["dpo"],
            "admin.cd80": ["admin"],
        },
    ),
    DemoOrganisation(
        "amiens_metropole",
        "Amiens Métropole",
        "epci",
        {"epci": "248000531"},
        {"admin.amiens-metropole": ["admin"]},
    ),
    DemoOrganisation(
        "cias",
        "CIAS d'Amiens Métropole",
        "cias",
        {"epci": "248000531"},
        {"agent.cias": ["agent"], "admin.cias": ["admin"]},
    ),
    DemoOrganisation(
        "ccas_amiens",
        "CCAS d'Amiens",
        "ccas",
        {"commune": "80021"},
        {
            "accueil.ccas-amiens": ["accueil"],
            "agent.ccas-amiens": ["agent"],
            "decideur.ccas-amiens": ["decideur"],
            "pilotage.ccas-amiens": ["pilotage"],
            "dpo.ccas-amiens": ["dpo"],
            "admin.ccas-amiens": ["admin"],
        },
    ),
    DemoOrganisation(
        "ccas_longueau",
        "CCAS de Longueau",
        "ccas",
        {"commune": "80489"},
        {"agent.ccas-longueau": ["agent"], "admin.ccas-longueau": ["admin"]},
    ),
    DemoOrganisation(
        "commune_corbie",
        "Commune de Corbie",
        "commune",
        {"commune": "80212"},
        {"accueil.mairie-corbie": ["accueil"], "admin.mairie-corbie": ["admin"]},
    ),
    DemoOrganisation(
        "ccas_corbie",
        "CCAS de Corbie",
        "ccas",
        {"commune": "80212"},
        {"agent.ccas-corbie": ["agent"], "admin.ccas-corbie": ["admin"]},
    ),
    DemoOrganisation(
        "cc_val_de_somme",
        "Communauté de communes du Val de Somme",
        "epci",
        {"epci": "248000499"},
        {"admin.val-de-somme": ["admin"]},
    ),
    DemoOrganisation(
        "caf",
        "CAF de la Somme",
        "organisme_social",
        {"service_area": {"departements": ["80"]}},
        {"agent.caf80": ["agent"], "admin.caf80": ["admin"]},
    ),
    DemoOrganisation(
        "secours_populaire",
        "Secours populaire – fédération de la Somme",
        "association",
        {"service_area": {"communes": ["80021", "80489", "80164", "80674"]}},
        {"agent.secours-populaire": ["agent"], "admin.secours-populaire": ["admin"]},
    ),
    DemoOrganisation(
        "mission_locale",
        "Mission locale du Grand Amiénois",
        "association",
        {"service_area": {"departements": ["80"]}},
        {"agent.mission-locale": ["agent"], "admin.mission-locale": ["admin"]},
    ),
)


@dataclass(frozen=True)
class DemoConvention:
    reference: str
    grantor: str
    grantee: str
    competences: list[str]
    communes: list[str] | str
    data_categories: list[str]


CONVENTIONS = (
    DemoConvention(
        "CONV-80-RSA-2026-001",
        "departement",
        "ccas_amiens",
        ["rsa", "insertion"],
        ["80021"],
        [
            "identity",
            "contact",
            "nir",
            "household",
            "resources",
            "situation",
            "notes",
            "referrals",
            "orientations",
            "dossiers",
        ],
    ),
    DemoConvention(
        "CONV-LONGUEAU-CIAS-2026",
        "ccas_longueau",
        "cias",
        # aide_alimentaire is delegable to associations only (catalogue); a CIAS holds it by
        # law on its EPCI anyway.
        ["petite_enfance", "personnes_agees"],
        ["80489"],
        ["identity", "contact", "household", "resources", "situation", "referrals"],
    ),
    DemoConvention(
        "CONV-AMIENS-SPF-2026",
        "ccas_amiens",
        "secours_populaire",
        ["aide_alimentaire"],
        ["80021"],
        # the association instructs food-aid requests the CCAS decides
        ["identity", "contact", "household", "resources", "referrals", "aids"],
    ),
    DemoConvention(
        "CONV-80-FAJ-2026",
        "departement",
        "mission_locale",
        ["faj", "insertion"],
        "all",
        ["identity", "contact", "situation", "resources", "referrals", "dossiers"],
    ),
)


@dataclass
class DemoResult:
    organisations: dict[str, uuid.UUID] = field(default_factory=dict)
    users: list[tuple[str, str, list[str]]] = field(default_factory=list)
    conventions: dict[str, uuid.UUID] = field(default_factory=dict)
    clients: list[tuple[str, str, str]] = field(default_factory=list)


def _email(local: str) -> str:
    return f"{local}@somme.demo"


class _Api:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        # each login costs an argon2 verification: once per user and organisation is enough
        self._tokens: dict[tuple[str, uuid.UUID | None], str] = {}

    async def token(self, email: str, organisation_id: uuid.UUID | None = None) -> str:
        if (email, organisation_id) in self._tokens:
            return self._tokens[email, organisation_id]
        form = {"grant_type": "password", "username": email, "password": DEMO_PASSWORD}
        if organisation_id:
            form["organisation_id"] = str(organisation_id)
        r = await self.client.post("/v1/auth/token", data=form)
        _ok(r)
        token = str(r.json()["access_token"])
        self._tokens[email, organisation_id] = token
        return token

    async def call(self, method: str, path: str, token: str, **kwargs: Any) -> httpx.Response:
        return await self.client.request(
            method, path, headers={"Authorization": f"Bearer {token}"}, **kwargs
        )


async def load_demo(app: FastAPI, *, platform_admin_email: str = PLATFORM_ADMIN) -> DemoResult:
    """Create the demo territory through the API of ``app`` (whose platform administrator
    ``platform_admin_email`` has the demo password)."""
    result = DemoResult()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://demo") as client:
        api = _Api(client)
        platform = await api.token(platform_admin_email)
        for org in ORGANISATIONS:
            found = await client.get("/v1/organisations", params={"q": org.name, "limit": 200})
            existing = [o for o in found.json()["items"] if o["name"] == org.name]
            if existing:
                org_id = uuid.UUID(existing[0]["id"])
            else:
                r = await api.call(
                    "POST",
                    "/v1/organisations",
                    platform,
                    json={"name": org.name, "kind": org.kind, **org.place},
                )
                _ok(r)
                org_id = uuid.UUID(r.json()["id"])
            result.organisations[org.key] = org_id
            await _add_members(api, platform, org, org_id)
            result.users.extend(
                (_email(local), org.name, roles) for local, roles in org.members.items()
            )

        for conv in CONVENTIONS:
            grantor = result.organisations[conv.grantor]
            grantee = result.organisations[conv.grantee]
            grantor_admin = await api.token(_admin_of(conv.grantor), grantor)
            listed = await api.call("GET", "/v1/conventions", grantor_admin, params={"limit": 200})
            existing = [c for c in listed.json()["items"] if c["reference"] == conv.reference]
            if existing:
                result.conventions[conv.reference] = uuid.UUID(existing[0]["id"])
                continue
            r = await api.call(
                "POST",
                "/v1/conventions",
                grantor_admin,
                json={
                    "reference": conv.reference,
                    "grantee_id": str(grantee),
                    "competences": conv.competences,
                    "communes": conv.communes,
                    "data_categories": conv.data_categories,
                    "valid_from": date(2026, 1, 1).isoformat(),
                },
            )
            _ok(r)
            conv_id = uuid.UUID(r.json()["id"])
            grantee_admin = await api.token(_admin_of(conv.grantee), grantee)
            _ok(await api.call("POST", f"/v1/conventions/{conv_id}/accept", grantee_admin, json={}))
            result.conventions[conv.reference] = conv_id

        for key, name, scopes in (
            (
                "departement",
                "SI du Conseil départemental",
                ["dossiers:sync", "changes:read", "referrals:read"],
            ),
            (
                "secours_populaire",
                "Logiciel du Secours populaire",
                ["referrals:write", "referrals:read"],
            ),
        ):
            org_id = result.organisations[key]
            admin = await api.token(_admin_of(key), org_id)
            listed = await api.call("GET", f"/v1/organisations/{org_id}/api-clients", admin)
            # a secret is shown only when created: a new client at every load, so that every
            # start can print working credentials
            for previous in (c for c in listed.json() if c["name"] == name):
                path = f"/v1/organisations/{org_id}/api-clients/{previous['client_id']}"
                _ok(await api.call("DELETE", path, admin))
            r = await api.call(
                "POST",
                f"/v1/organisations/{org_id}/api-clients",
                admin,
                json={"name": name, "scopes": scopes},
            )
            _ok(r)
            result.clients.append((name, r.json()["client_id"], r.json()["client_secret"]))
    return result


async def _add_members(api: _Api, platform: str, org: DemoOrganisation, org_id: uuid.UUID) -> None:
    """The way a real organisation is staffed: the platform operator adds its first admin,
    who adds the others; sensitive and dpo wait for a second pair of eyes, here the platform
    operator's (the organisation has a single admin)."""
    members = await api.call("GET", f"/v1/organisations/{org_id}/members", platform)
    known = {m["email"] for m in members.json()} if members.is_success else set()
    if all(_email(local) in known for local in org.members):
        return  # a later run: adding them again would hash each password only to answer 409
    admin = _admin_of(org.key)
    ordered = sorted(org.members.items(), key=lambda item: _email(item[0]) != admin)
    token = platform
    for local, roles in ordered:
        r = await api.call(
            "POST",
            f"/v1/organisations/{org_id}/members",
            token,
            json={
                "email": _email(local),
                "full_name": local,
                "roles": roles,
                "password": DEMO_PASSWORD,
            },
        )
        # a second run: members exist (409) and the admin the platform added leads (403)
        if r.status_code not in (201, 409) and not (token == platform and r.status_code == 403):
            _ok(r)
        if _email(local) == admin:
            token = await api.token(admin, org_id)
        grant = r.json().get("pending_grant") if r.status_code == 201 else None
        if grant:
            decided = await api.call(
                "POST",
                f"/v1/organisations/{org_id}/role-grants/{grant['id']}/approve",
                platform,
            )
            _ok(decided)


def _ok(response: httpx.Response) -> None:
    if response.is_error:
        raise RuntimeError(
            f"demo set-up failed: {response.request.method} {response.request.url.path} "
            f"answered {response.status_code}: {response.text}"
        )


def _admin_of(key: str) -> str:
    org = next(o for o in ORGANISATIONS if o.key == key)
    local = next(local for local, roles in org.members.items() if "admin" in roles)
    return _email(local)


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
        api = _Api(client)
        ids: dict[str, str] = {}
        for person in PEOPLE:
            token = await api.token(_email(person.follower))
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
            _ok(found)
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
            _ok(r)
            ids[person.birth_name] = r.json()["id"]
            created.append(f"{person.first_names} {person.birth_name}: {r.json()['id']}")

        ccas = await api.token(_email("agent.ccas-amiens"))
        if "Dubois" in ids:
            pid = ids["Dubois"]
            spf = str(result.organisations["secours_populaire"])
            _ok(
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
            _ok(consent)
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
            _ok(referral)
            association = await api.token(_email("agent.secours-populaire"))
            _ok(
                await api.call(
                    "POST", f"/v1/referrals/{referral.json()['id']}/accept", association, json={}
                )
            )
        if "Martin" in ids:
            departement = await api.token(_email("agent.cd80"))
            _ok(
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
            _ok(dossier)
            _ok(
                await api.call("POST", f"/v1/dossiers/{dossier.json()['id']}/submit", ccas, json={})
            )
    return created
