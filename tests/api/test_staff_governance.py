"""Staff governance over HTTP (issue 10, item 5), with several organisations of the demo.

Each reproduction of the issue is a test here: self-granted roles, an association attaching
a département agent, the platform operator staffing a département with personal-data roles,
and membership changes missing from the audit trail.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from typing import Any

import httpx
from fastapi import FastAPI

from api.demo.loader import load_demo
from api.demo.territory import DEMO_PASSWORD
from tests.world import World

Headers = Callable[[str], dict[str, str]]

DEPARTEMENT_AGENT = "agent.cd80@somme.demo"
SECOURS_ADMIN = "admin.secours-populaire@somme.demo"


async def _bearer(
    client: httpx.AsyncClient, email: str, organisation_id: uuid.UUID | None = None
) -> dict[str, str]:
    form = {"grant_type": "password", "username": email, "password": DEMO_PASSWORD}
    if organisation_id is not None:
        form["organisation_id"] = str(organisation_id)
    r = await client.post("/v1/auth/token", data=form)
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


async def _roles(
    client: httpx.AsyncClient, organisation: uuid.UUID, user: uuid.UUID, admin: dict[str, str]
) -> list[str]:
    members = (await client.get(f"/v1/organisations/{organisation}/members", headers=admin)).json()
    return next(m["roles"] for m in members if m["user_id"] == str(user))


async def _trail(
    client: httpx.AsyncClient, headers: dict[str, str], **query: str
) -> list[dict[str, Any]]:
    r = await client.get("/v1/audit", params=query, headers=headers)
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


async def test_an_admin_cannot_change_their_own_roles(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    for persona, org_key in (("departement_admin", "departement"), ("org_admin", "ccas_amiens")):
        organisation = world.organisations[org_key]
        me = world.personas[persona].principal_id
        assert me is not None
        for roles in (["admin", "dpo"], ["admin", "sensitive"], ["admin", "decideur"], ["agent"]):
            r = await client.patch(
                f"/v1/organisations/{organisation}/members/{me}",
                json={"roles": roles},
                headers=as_persona(persona),
            )
            assert r.status_code == 403, r.text
            assert r.json()["code"] == "self-role-change"
        assert await _roles(client, organisation, me, as_persona(persona)) == ["admin"]
        # nothing reached the trail either: no change happened
        assert await _trail(client, as_persona(persona), action="member.roles_change") == []


async def test_sensitive_and_dpo_wait_for_a_second_admin(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    departement = world.organisations["departement"]
    base = f"/v1/organisations/{departement}"
    first = as_persona("departement_admin")
    agent = world.personas["departement_agent"].principal_id
    dpo_user = world.personas["dpo"].principal_id
    assert agent is not None and dpo_user is not None

    # the département has a single admin: a second one is approved by the platform operator
    asked = await client.patch(
        f"{base}/members/{dpo_user}", json={"roles": ["dpo", "admin"]}, headers=first
    )
    assert asked.status_code == 202, asked.text
    promotion = asked.json()["pending_grant"]
    assert promotion["roles"] == ["admin"] and promotion["status"] == "pending"
    assert asked.json()["roles"] == ["dpo"]
    self_approved = await client.post(
        f"{base}/role-grants/{promotion['id']}/approve", headers=first
    )
    assert self_approved.status_code == 403
    assert self_approved.json()["code"] == "second-admin-required"
    approved = await client.post(
        f"{base}/role-grants/{promotion['id']}/approve", headers=as_persona("platform_admin")
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "approved"
    second = as_persona("dpo")  # now admin and dpo

    # asking sensitive for the agent: nothing changes until the other admin approves
    asked = await client.patch(
        f"{base}/members/{agent}", json={"roles": ["agent", "sensitive"]}, headers=first
    )
    assert asked.status_code == 202, asked.text
    grant = asked.json()["pending_grant"]
    assert await _roles(client, departement, agent, first) == ["agent"]
    again = await client.patch(
        f"{base}/members/{agent}", json={"roles": ["agent", "dpo"]}, headers=first
    )
    assert again.status_code == 409 and again.json()["code"] == "role-grant-pending"
    listed = await client.get(f"{base}/role-grants?status=pending", headers=second)
    assert [g["id"] for g in listed.json()["items"]] == [grant["id"]]
    for who, code in (
        (first, "second-admin-required"),  # the one who asked
        (as_persona("platform_admin"), "second-admin-required"),  # two admins now
        (as_persona("departement_agent"), "forbidden"),  # not an admin
        (as_persona("org_admin"), "forbidden"),  # another organisation's admin
    ):
        r = await client.post(f"{base}/role-grants/{grant['id']}/approve", headers=who)
        assert r.status_code == 403 and r.json()["code"] == code, r.text
    approved = await client.post(f"{base}/role-grants/{grant['id']}/approve", headers=second)
    assert approved.status_code == 200, approved.text
    assert await _roles(client, departement, agent, first) == ["agent", "sensitive"]
    twice = await client.post(f"{base}/role-grants/{grant['id']}/deny", headers=first)
    assert twice.status_code == 409 and twice.json()["code"] == "invalid-transition"

    # the trail of the département shows who asked, who approved, which roles: ids only
    entries = await _trail(client, second, action="role_grant.approve")
    assert {(e["resource_id"], e["purpose"]) for e in entries} >= {(grant["id"], "+sensitive")}
    assert DEPARTEMENT_AGENT not in str(entries)


async def test_a_grant_can_be_denied_or_withdrawn(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    ccas = world.organisations["ccas_amiens"]
    agent = world.personas["ccas_rsa_agent"].principal_id
    admin = as_persona("org_admin")
    asked = await client.patch(
        f"/v1/organisations/{ccas}/members/{agent}", json={"roles": ["agent", "dpo"]}, headers=admin
    )
    assert asked.status_code == 202
    grant = asked.json()["pending_grant"]["id"]
    denied = await client.post(f"/v1/organisations/{ccas}/role-grants/{grant}/deny", headers=admin)
    assert denied.status_code == 200 and denied.json()["status"] == "denied"
    assert await _roles(client, ccas, agent, admin) == ["agent"]
    assert [e["purpose"] for e in await _trail(client, admin, action="role_grant.deny")] == ["+dpo"]


async def test_decideur_is_granted_directly_and_audited(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    ccas = world.organisations["ccas_amiens"]
    agent = world.personas["ccas_rsa_agent"].principal_id
    admin = as_persona("org_admin")
    r = await client.patch(
        f"/v1/organisations/{ccas}/members/{agent}", json={"roles": ["decideur"]}, headers=admin
    )
    assert r.status_code == 200 and r.json()["roles"] == ["decideur"]
    (entry,) = await _trail(client, admin, action="member.roles_change")
    assert entry["resource_id"] == str(agent) and entry["purpose"] == "+decideur -agent"
    removed = await client.delete(f"/v1/organisations/{ccas}/members/{agent}", headers=admin)
    assert removed.status_code == 204
    # the organisation's DPO reads the same trail as its admins
    dpo = await _bearer(client, "dpo.ccas-amiens@somme.demo")
    (gone,) = await _trail(client, dpo, action="member.remove")
    assert gone["resource_id"] == str(agent)
    assert [e["action"] for e in await _trail(client, dpo, actor_id=str(gone["actor"]["id"]))][
        :2
    ] == ["member.remove", "member.roles_change"]


async def test_role_grants_page_with_a_cursor(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    ccas = world.organisations["ccas_amiens"]
    admin = as_persona("org_admin")
    for persona in ("ccas_rsa_agent", "ccas_accueil"):
        user = world.personas[persona].principal_id
        r = await client.patch(
            f"/v1/organisations/{ccas}/members/{user}", json={"roles": ["dpo"]}, headers=admin
        )
        assert r.status_code == 202
    url = f"/v1/organisations/{ccas}/role-grants"
    first = (await client.get(url, params={"limit": 1}, headers=admin)).json()
    second = (
        await client.get(url, params={"limit": 1, "cursor": first["next_cursor"]}, headers=admin)
    ).json()
    assert len(first["items"]) == len(second["items"]) == 1
    assert first["items"][0]["id"] != second["items"][0]["id"]
    assert first["items"][0]["requested_at"] >= second["items"][0]["requested_at"]
    # an instant without offset and a valid id: ["2026-01-01T00:00:00", "00000000-…"]
    naive_instant = base64.urlsafe_b64encode(
        json.dumps(["2026-01-01T00:00:00", str(uuid.UUID(int=0))]).encode()
    ).decode()
    for forged in ("WyJ4IiwieSJd", naive_instant, "!!"):
        bad = await client.get(url, params={"cursor": forged}, headers=admin)
        assert bad.status_code == 422, forged


async def test_the_platform_operator_adds_a_first_admin_and_nothing_else(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    platform = as_persona("platform_admin")
    departement = world.organisations["departement"]
    # the reproduction: a département user with agent, sensitive and dpo
    staffed = await client.post(
        f"/v1/organisations/{departement}/members",
        json={"email": "x@somme.demo", "full_name": "X", "roles": ["agent", "sensitive", "dpo"]},
        headers=platform,
    )
    assert staffed.status_code == 403 and staffed.json()["code"] == "platform-first-admin-only"
    agent = world.personas["departement_agent"].principal_id
    for method, body in (("PATCH", {"roles": ["agent", "sensitive"]}), ("DELETE", None)):
        r = await client.request(
            method, f"/v1/organisations/{departement}/members/{agent}", json=body, headers=platform
        )
        assert r.status_code == 403 and r.json()["code"] == "platform-first-admin-only"

    created = await client.post(
        "/v1/organisations",
        json={"name": "CCAS de Camon", "kind": "ccas", "commune": "80164"},
        headers=platform,
    )
    camon = created.json()["id"]
    for roles in (["admin", "dpo"], ["agent"], ["admin", "sensitive"]):
        r = await client.post(
            f"/v1/organisations/{camon}/members",
            json={"email": "direction@camon.demo", "full_name": "D", "roles": roles},
            headers=platform,
        )
        assert r.status_code == 403 and r.json()["code"] == "platform-first-admin-only"
    first = await client.post(
        f"/v1/organisations/{camon}/members",
        json={
            "email": "direction@camon.demo",
            "full_name": "D",
            "roles": ["admin"],
            "password": DEMO_PASSWORD,
        },
        headers=platform,
    )
    assert first.status_code == 201 and first.json()["status"] == "active", first.text
    second = await client.post(
        f"/v1/organisations/{camon}/members",
        json={"email": "autre@camon.demo", "full_name": "A", "roles": ["admin"]},
        headers=platform,
    )
    assert second.status_code == 403 and second.json()["code"] == "platform-first-admin-only"
    # the new organisation's trail tells its admin who enrolled them
    camon_admin = await _bearer(client, "direction@camon.demo")
    (entry,) = await _trail(client, camon_admin, action="member.add")
    assert entry["actor"]["id"] == str(world.personas["platform_admin"].principal_id)
    assert entry["resource_id"] == first.json()["user_id"] and entry["purpose"] == "+admin"


async def test_an_agent_of_another_organisation_is_invited_not_attached(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    association = world.organisations["secours_populaire"]
    admin = await _bearer(client, SECOURS_ADMIN)
    added = await client.post(
        f"/v1/organisations/{association}/members",
        # a password sent for someone who already has an account changes nothing
        json={
            "email": DEPARTEMENT_AGENT,
            "full_name": "Agent",
            "roles": ["agent"],
            "password": "chosen-by-the-association",
        },
        headers=admin,
    )
    assert added.status_code == 201, added.text
    assert added.json()["status"] == "invited"
    hijack = {"grant_type": "password", "username": DEPARTEMENT_AGENT}
    hijack["password"] = "chosen-by-the-association"
    assert (await client.post("/v1/auth/token", data=hijack)).status_code == 400
    # the agent's usual sign-in still works and acts for the département
    agent = await _bearer(client, DEPARTEMENT_AGENT)
    me = (await client.get("/v1/me", headers=agent)).json()
    assert me["organisation"]["id"] == str(world.organisations["departement"])
    # and naming the association does not work before they accept
    form = {
        "grant_type": "password",
        "username": DEPARTEMENT_AGENT,
        "password": DEMO_PASSWORD,
        "organisation_id": str(association),
    }
    assert (await client.post("/v1/auth/token", data=form)).status_code == 400
    invitations = (await client.get("/v1/me/invitations", headers=agent)).json()
    assert [(i["organisation"]["id"], i["roles"]) for i in invitations] == [
        (str(association), ["agent"])
    ]
    declined = await client.post(f"/v1/me/invitations/{association}/decline", headers=agent)
    assert declined.status_code == 204
    members = (await client.get(f"/v1/organisations/{association}/members", headers=admin)).json()
    assert DEPARTEMENT_AGENT not in {m["email"] for m in members}
    trail = await _trail(client, admin)
    actions = [(e["action"], e["resource_id"]) for e in trail]
    user = str(world.personas["departement_agent"].principal_id)
    assert ("member.invite", user) in actions and ("member.invitation_decline", user) in actions
    assert DEPARTEMENT_AGENT not in str(trail)


async def test_the_demo_staffs_organisations_through_their_admins_and_loads_twice(
    app: FastAPI, client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    again = await load_demo(app)  # a second run changes nothing and fails on nothing
    assert again.organisations == {
        k: v for k, v in world.organisations.items() if k != "plateforme"
    }
    departement = world.organisations["departement"]
    trail = await _trail(client, as_persona("departement_admin"), limit="200")
    platform = str(world.personas["platform_admin"].principal_id)
    by_platform = {e["action"] for e in trail if e["actor"]["id"] == platform}
    # the platform operator enrolled the first admin and approved the guarded roles only
    assert by_platform == {"member.add", "role_grant.approve"}
    sensitive = world.personas["departement_sensitive"].principal_id
    assert sensitive is not None
    assert await _roles(client, departement, sensitive, as_persona("departement_admin")) == [
        "agent",
        "sensitive",
    ]


async def test_api_clients_are_created_by_their_organisation_and_audited(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    departement = world.organisations["departement"]
    url = f"/v1/organisations/{departement}/api-clients"
    body = {"name": "SI", "scopes": ["dossiers:sync", "beneficiaries:read"]}
    # a client's secret would let the platform operator read the département's people
    refused = await client.post(url, json=body, headers=as_persona("platform_admin"))
    assert refused.status_code == 403 and refused.json()["code"] == "platform-first-admin-only"
    admin = as_persona("departement_admin")
    created = await client.post(url, json=body, headers=admin)
    assert created.status_code == 201, created.text
    client_id = created.json()["client_id"]
    # revoking only takes away: the platform operator may, as a kill switch
    revoked = await client.delete(f"{url}/{client_id}", headers=as_persona("platform_admin"))
    assert revoked.status_code == 204
    trail = await _trail(client, admin)
    entries = {(e["action"], e["resource_id"], e["actor"]["id"]) for e in trail}
    assert (
        "api_client.create",
        client_id,
        str(world.personas["departement_admin"].principal_id),
    ) in entries
    assert (
        "api_client.revoke",
        client_id,
        str(world.personas["platform_admin"].principal_id),
    ) in entries
    assert created.json()["client_secret"] not in str(trail)
