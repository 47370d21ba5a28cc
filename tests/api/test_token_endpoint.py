"""POST /v1/auth/token over HTTP: grants, identical failures, rotation and reuse, removal."""

from __future__ import annotations

import os
from collections.abc import Callable

import httpx
from fastapi import FastAPI

from api.auth.throttle import LoginLimits, LoginThrottle
from api.demo.territory import DEMO_PASSWORD
from tests.world import World

Headers = Callable[[str], dict[str, str]]
AGENT = "agent.ccas-amiens@somme.demo"


async def _login(
    client: httpx.AsyncClient, username: str, password: str, **extra: str
) -> httpx.Response:
    return await client.post(
        "/v1/auth/token",
        data={"grant_type": "password", "username": username, "password": password, **extra},
    )


async def test_password_grant_gives_a_working_access_token(
    client: httpx.AsyncClient, world: World
) -> None:
    r = await _login(client, AGENT, DEMO_PASSWORD)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 900
    assert r.headers["cache-control"] == "no-store"
    me = await client.get("/v1/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.json()["email"] == AGENT
    assert me.json()["organisation"]["name"] == "CCAS d'Amiens"


async def test_unknown_user_and_wrong_password_answer_the_same(
    client: httpx.AsyncClient, world: World
) -> None:
    unknown = await _login(client, "personne@nulle.part", "whatever-password")
    wrong = await _login(client, AGENT, "not-the-password")
    assert unknown.status_code == wrong.status_code == 400
    assert (
        unknown.json()
        == wrong.json()
        == {
            "error": "invalid_grant",
            "error_description": "Wrong e-mail or password.",
        }
    )


async def test_refresh_rotates_and_reuse_revokes_the_family(
    client: httpx.AsyncClient, world: World
) -> None:
    first = (await _login(client, AGENT, DEMO_PASSWORD)).json()["refresh_token"]
    second = await client.post(
        "/v1/auth/token", data={"grant_type": "refresh_token", "refresh_token": first}
    )
    assert second.status_code == 200
    rotated = second.json()["refresh_token"]
    assert rotated != first
    reuse = await client.post(
        "/v1/auth/token", data={"grant_type": "refresh_token", "refresh_token": first}
    )
    assert reuse.status_code == 400 and reuse.json()["error"] == "invalid_grant"
    # the whole family is gone, including the token issued after the stolen one
    after = await client.post(
        "/v1/auth/token", data={"grant_type": "refresh_token", "refresh_token": rotated}
    )
    assert after.status_code == 400


async def test_removed_member_loses_access_and_refresh(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    login = (await _login(client, AGENT, DEMO_PASSWORD)).json()
    bearer = {"Authorization": f"Bearer {login['access_token']}"}
    assert (await client.get("/v1/me", headers=bearer)).status_code == 200
    ccas = world.organisations["ccas_amiens"]
    user = world.personas["ccas_rsa_agent"].principal_id
    removed = await client.delete(
        f"/v1/organisations/{ccas}/members/{user}", headers=as_persona("org_admin")
    )
    assert removed.status_code == 204
    denied = await client.get("/v1/me", headers=bearer)
    assert denied.status_code == 401
    assert 'error="invalid_token"' in denied.headers["www-authenticate"]
    refresh = await client.post(
        "/v1/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": login["refresh_token"]},
    )
    assert refresh.status_code == 400


async def test_client_credentials(client: httpx.AsyncClient, world: World) -> None:
    r = await client.post(
        "/v1/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "test-client_with_scopes",
            "client_secret": "test-secret-client_with_scopes",
        },
    )
    assert r.status_code == 200, r.text
    assert "refresh_token" not in r.json()
    assert set(r.json()["scope"].split()) == {"dossiers:sync", "changes:read", "referrals:read"}
    me = await client.get("/v1/me", headers={"Authorization": f"Bearer {r.json()['access_token']}"})
    assert me.json()["kind"] == "client"
    bad = await client.post(
        "/v1/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "test-client_with_scopes",
            "client_secret": "x",
        },
    )
    assert bad.status_code == 401 and bad.json()["error"] == "invalid_client"


async def test_several_memberships_need_an_organisation(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    corbie = world.organisations["ccas_corbie"]
    added = await client.post(
        f"/v1/organisations/{corbie}/members",
        json={"email": AGENT, "full_name": "Agent partagé", "roles": ["agent"]},
        headers=as_persona("ccas_corbie_admin"),
    )
    assert added.status_code == 201, added.text
    # an agent of another organisation is invited: their usual sign-in keeps working
    assert added.json()["status"] == "invited"
    usual = (await _login(client, AGENT, DEMO_PASSWORD)).json()
    bearer = {"Authorization": f"Bearer {usual['access_token']}"}
    accepted = await client.post(f"/v1/me/invitations/{corbie}/accept", headers=bearer)
    assert accepted.status_code == 204, accepted.text
    ambiguous = await _login(client, AGENT, DEMO_PASSWORD)
    assert ambiguous.status_code == 400 and ambiguous.json()["error"] == "invalid_request"
    assert {o["name"] for o in ambiguous.json()["organisations"]} == {
        "CCAS d'Amiens",
        "CCAS de Corbie",
    }
    chosen = await _login(client, AGENT, DEMO_PASSWORD, organisation_id=str(corbie))
    me = await client.get(
        "/v1/me", headers={"Authorization": f"Bearer {chosen.json()['access_token']}"}
    )
    assert me.json()["organisation"]["id"] == str(corbie)


async def test_repeated_failures_are_throttled(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    app.state.throttle = LoginThrottle(
        lambda: app.state.db.app_engine, os.urandom(32), LoginLimits(max_account_failures=3)
    )
    for _ in range(3):
        assert (await _login(client, AGENT, "wrong-password-1")).status_code == 400
    r = await _login(client, AGENT, DEMO_PASSWORD)
    assert r.status_code == 429
    assert int(r.headers["retry-after"]) > 0


async def test_forged_tokens_are_refused_over_http(client: httpx.AsyncClient, world: World) -> None:
    token = (await _login(client, AGENT, DEMO_PASSWORD)).json()["access_token"]
    header, payload, signature = token.split(".")
    tampered = f"{header}.{payload[:-4]}AAAA.{signature}"
    unsigned = "eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0." + payload + "."
    for bad in (tampered, unsigned, "not-a-jwt"):
        r = await client.get("/v1/me", headers={"Authorization": f"Bearer {bad}"})
        assert r.status_code == 401, bad
        assert r.json()["code"] == "unauthenticated"
