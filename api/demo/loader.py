"""Loading the demo territory: the Somme (80), its partners, conventions and one user per role.

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

from api.demo.territory import (
    CONVENTIONS,
    DEMO_PASSWORD,
    ORGANISATIONS,
    PLATFORM_ADMIN,
    DemoOrganisation,
)


@dataclass
class DemoResult:
    organisations: dict[str, uuid.UUID] = field(default_factory=dict)
    users: list[tuple[str, str, list[str]]] = field(default_factory=list)
    conventions: dict[str, uuid.UUID] = field(default_factory=dict)
    clients: list[tuple[str, str, str]] = field(default_factory=list)


def demo_email(local: str) -> str:
    return f"{local}@somme.demo"


class DemoClient:
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
        expect_success(r)
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
        api = DemoClient(client)
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
                expect_success(r)
                org_id = uuid.UUID(r.json()["id"])
            result.organisations[org.key] = org_id
            await _add_members(api, platform, org, org_id)
            result.users.extend(
                (demo_email(local), org.name, roles) for local, roles in org.members.items()
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
            expect_success(r)
            conv_id = uuid.UUID(r.json()["id"])
            grantee_admin = await api.token(_admin_of(conv.grantee), grantee)
            expect_success(
                await api.call("POST", f"/v1/conventions/{conv_id}/accept", grantee_admin, json={})
            )
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
                expect_success(await api.call("DELETE", path, admin))
            r = await api.call(
                "POST",
                f"/v1/organisations/{org_id}/api-clients",
                admin,
                json={"name": name, "scopes": scopes},
            )
            expect_success(r)
            result.clients.append((name, r.json()["client_id"], r.json()["client_secret"]))
    return result


async def _add_members(
    api: DemoClient, platform: str, org: DemoOrganisation, org_id: uuid.UUID
) -> None:
    """The way a real organisation is staffed: the platform operator adds its first admin,
    who adds the others; sensitive and dpo wait for a second pair of eyes, here the platform
    operator's (the organisation has a single admin)."""
    members = await api.call("GET", f"/v1/organisations/{org_id}/members", platform)
    known = {m["email"] for m in members.json()} if members.is_success else set()
    if all(demo_email(local) in known for local in org.members):
        return  # a later run: adding them again would hash each password only to answer 409
    admin = _admin_of(org.key)
    ordered = sorted(org.members.items(), key=lambda item: demo_email(item[0]) != admin)
    token = platform
    for local, roles in ordered:
        r = await api.call(
            "POST",
            f"/v1/organisations/{org_id}/members",
            token,
            json={
                "email": demo_email(local),
                "full_name": local,
                "roles": roles,
                "password": DEMO_PASSWORD,
            },
        )
        # a second run: members exist (409) and the admin the platform added leads (403)
        if r.status_code not in (201, 409) and not (token == platform and r.status_code == 403):
            expect_success(r)
        if demo_email(local) == admin:
            token = await api.token(admin, org_id)
        grant = r.json().get("pending_grant") if r.status_code == 201 else None
        if grant:
            decided = await api.call(
                "POST",
                f"/v1/organisations/{org_id}/role-grants/{grant['id']}/approve",
                platform,
            )
            expect_success(decided)


def expect_success(response: httpx.Response) -> None:
    if response.is_error:
        raise RuntimeError(
            f"demo set-up failed: {response.request.method} {response.request.url.path} "
            f"answered {response.status_code}: {response.text}"
        )


def _admin_of(key: str) -> str:
    org = next(o for o in ORGANISATIONS if o.key == key)
    local = next(local for local, roles in org.members.items() if "admin" in roles)
    return demo_email(local)
