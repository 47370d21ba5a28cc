"""Helpers shared by the people tests: demo users beyond the matrix personas, people."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.engine import URL

from api.auth.tokens import issue_access_token
from api.db.engine import owner_connection
from tests.world import World

Headers = Callable[[str], dict[str, str]]

#: demo users the matrix does not name: e-mail local part → organisation key
DEMO_USERS = {
    "sensitive_agent": ("sensible.cd80", "departement"),
    "ccas_dpo": ("dpo.ccas-amiens", "ccas_amiens"),
    "ccas_admin": ("admin.ccas-amiens", "ccas_amiens"),
}


async def demo_headers(app: FastAPI, world: World, database_url: URL, name: str) -> dict[str, str]:
    """Authorization headers of a demo user, with a real token."""
    local, org_key = DEMO_USERS[name]
    organisation = world.organisations[org_key]
    async with owner_connection(database_url) as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT u.id, m.roles FROM app_user u JOIN membership m ON m.user_id = u.id "
                    "WHERE u.email = :e AND m.organisation_id = :o"
                ),
                {"e": f"{local}@somme.demo", "o": organisation},
            )
        ).one()
    token, _ = issue_access_token(
        app.state.keyring,
        app.state.settings,
        subject=str(row.id),
        kind="user",
        organisation_id=organisation,
        roles=row.roles,
        scopes=(),
    )
    return {"Authorization": f"Bearer {token}"}


def person(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "competence": "aide_facultative",
        "birth_name": "Carpentier",
        "first_names": "Odile",
        "birth_date": "1968-09-14",
        "sex": "F",
        "commune": "80021",
        "phone": "06 11 22 33 44",
    }
    body.update(overrides)
    return body


async def create(client: httpx.AsyncClient, headers: dict[str, str], **overrides: Any) -> str:
    r = await client.post("/v1/beneficiaries", json=person(**overrides), headers=headers)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def nir_with_key(first13: str) -> str:
    """A NIR whose control key is right."""
    return first13 + f"{97 - int(first13) % 97:02d}"


CONSENT = {
    "kind": "consent",
    "competence": "rsa",
    "purpose": "Partage avec le service RSA du département",
    "method": "oral",
    "given_on": "2026-01-05",
}
