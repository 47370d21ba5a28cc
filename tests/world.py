"""The demo territory loaded once per test run (committed), and personas with real tokens.

Personas are demo users (or API clients created here) for whom the tests mint access tokens
with ``api.auth.tokens`` — the same signer as the token endpoint — so each test does not pay
an argon2 login. The token endpoint itself is tested on its own.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.engine import URL

from api.auth.bootstrap import bootstrap_platform_admin
from api.auth.keys import KeyRing
from api.auth.passwords import hash_client_secret
from api.auth.tokens import issue_access_token
from api.db.engine import Database, owner_connection
from api.demo.loader import load_demo
from api.demo.territory import DEMO_PASSWORD, PLATFORM_ADMIN
from api.main import create_app
from api.settings import Settings


@dataclass(frozen=True)
class Persona:
    name: str
    kind: str  # "user" | "client" | "anonymous"
    principal_id: uuid.UUID | None = None
    organisation_id: uuid.UUID | None = None
    roles: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()


# persona name → (e-mail, organisation key in the demo)
USER_PERSONAS = {
    "departement_agent": ("agent.cd80@somme.demo", "departement"),
    "departement_admin": ("admin.cd80@somme.demo", "departement"),
    "ccas_rsa_agent": ("agent.ccas-amiens@somme.demo", "ccas_amiens"),
    "ccas_agent": ("agent.ccas-corbie@somme.demo", "ccas_corbie"),
    "cias_agent": ("agent.cias@somme.demo", "cias"),
    "association_agent": ("agent.secours-populaire@somme.demo", "secours_populaire"),
    "pilotage": ("pilotage.cd80@somme.demo", "departement"),
    "dpo": ("dpo.cd80@somme.demo", "departement"),
    "org_admin": ("admin.ccas-amiens@somme.demo", "ccas_amiens"),
    "platform_admin": (PLATFORM_ADMIN, "plateforme"),
}
# more users the behaviour tests need, outside the matrix
EXTRA_PERSONAS = {
    "ccas_corbie_admin": ("admin.ccas-corbie@somme.demo", "ccas_corbie"),
    "ccas_accueil": ("accueil.ccas-amiens@somme.demo", "ccas_amiens"),
    "mission_locale_agent": ("agent.mission-locale@somme.demo", "mission_locale"),
    "departement_sensitive": ("sensible.cd80@somme.demo", "departement"),
}
CLIENT_PERSONAS = {
    "client_with_scopes": ("departement", ("dossiers:sync", "changes:read", "referrals:read")),
    "client_without_scopes": ("departement", ("stats:read",)),
}


@dataclass
class World:
    organisations: dict[str, uuid.UUID]
    conventions: dict[str, uuid.UUID]
    personas: dict[str, Persona] = field(default_factory=dict)
    #: ids created per test (e.g. the person of the people matrix)
    extra: dict[str, str] = field(default_factory=dict)

    def token(self, keyring: KeyRing, settings: Settings, persona: str) -> str | None:
        p = self.personas[persona]
        if p.kind == "anonymous":
            return None
        assert p.principal_id and p.organisation_id
        token, _ = issue_access_token(
            keyring,
            settings,
            subject=str(p.principal_id),
            kind="user" if p.kind == "user" else "client",
            organisation_id=p.organisation_id,
            roles=p.roles,
            scopes=p.scopes,
        )
        return token


async def load_world(settings: Settings, database_url: URL) -> World:
    settings = settings.model_copy(
        update={
            "bootstrap_admin_email": PLATFORM_ADMIN,
            "bootstrap_admin_password": SecretStr(DEMO_PASSWORD),
        }
    )
    database = Database.connect(settings, owner=database_url)
    try:
        await bootstrap_platform_admin(settings, database_url)
        app: FastAPI = create_app(settings, database=database)
        demo = await load_demo(app)
    finally:
        await database.dispose()
    world = World(organisations=dict(demo.organisations), conventions=dict(demo.conventions))
    async with owner_connection(database_url) as conn:
        platform = await conn.scalar(text("SELECT id FROM organisation WHERE kind = 'plateforme'"))
        world.organisations["plateforme"] = platform
        for name, (email, org_key) in {**USER_PERSONAS, **EXTRA_PERSONAS}.items():
            row = (
                await conn.execute(
                    text(
                        "SELECT u.id, m.roles FROM app_user u "
                        "JOIN membership m ON m.user_id = u.id "
                        "WHERE u.email = :e AND m.organisation_id = :o"
                    ),
                    {"e": email, "o": world.organisations[org_key]},
                )
            ).one()
            world.personas[name] = Persona(
                name, "user", row.id, world.organisations[org_key], tuple(row.roles)
            )
        for name, (org_key, scopes) in CLIENT_PERSONAS.items():
            client_pk = uuid.uuid4()
            await conn.execute(
                text(
                    "INSERT INTO api_client (id, organisation_id, client_id, name, secret_hash, "
                    "scopes, created_at) VALUES (:id, :o, :cid, :n, :h, :s, now())"
                ),
                {
                    "id": client_pk,
                    "o": world.organisations[org_key],
                    "cid": f"test-{name}",
                    "n": name,
                    "h": hash_client_secret("test-secret-" + name),
                    "s": list(scopes),
                },
            )
            world.personas[name] = Persona(
                name, "client", client_pk, world.organisations[org_key], (), scopes
            )
    world.personas["anonymous"] = Persona("anonymous", "anonymous")
    return world
