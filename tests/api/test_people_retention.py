"""Retention settings: the organisation's DPO or admin sets them, within 6 to 36 months."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from sqlalchemy.engine import URL

from tests.api.people_support import Headers, demo_headers
from tests.world import World


async def test_the_dpo_sets_retention_within_bounds(
    client: httpx.AsyncClient,
    world: World,
    as_persona: Headers,
    app: FastAPI,
    database_url: URL,
) -> None:
    url = f"/v1/organisations/{world.organisations['ccas_amiens']}/retention"
    dpo = await demo_headers(app, world, database_url, "ccas_dpo")
    read = await client.get(url, headers=dpo)
    assert read.status_code == 200
    assert read.json() == {"retention_months": 24, "audit_retention_months": 12}
    etag = read.headers["etag"]
    assert (await client.patch(url, json={"retention_months": 18}, headers=dpo)).status_code == 428
    for body in ({"retention_months": 5}, {"audit_retention_months": 37}, {"other": 1}):
        r = await client.patch(url, json=body, headers={**dpo, "If-Match": etag})
        assert r.status_code == 422, body
    ok = await client.patch(
        url,
        json={"retention_months": 18, "audit_retention_months": 6},
        headers={**dpo, "If-Match": etag},
    )
    assert ok.status_code == 200, ok.text
    assert ok.json() == {"retention_months": 18, "audit_retention_months": 6}
    stale = await client.patch(
        url, json={"retention_months": 30}, headers={**dpo, "If-Match": etag}
    )
    assert stale.status_code == 412
    # the admin may too; the change is in the organisation's trail
    admin = as_persona("org_admin")
    r = await client.patch(
        url, json={"retention_months": 36}, headers={**admin, "If-Match": ok.headers["etag"]}
    )
    assert r.status_code == 200 and r.json()["retention_months"] == 36
    trail = await client.get("/v1/audit", headers=admin)
    assert "organisation.retention_update" in [i["action"] for i in trail.json()["items"]]


async def test_nobody_else_sets_retention(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    url = f"/v1/organisations/{world.organisations['ccas_amiens']}/retention"
    for persona in ("ccas_rsa_agent", "dpo", "departement_admin", "platform_admin", "pilotage"):
        headers = as_persona(persona)
        assert (await client.get(url, headers=headers)).status_code == 403, persona
        r = await client.patch(
            url, json={"retention_months": 6}, headers={**headers, "If-Match": '"1"'}
        )
        assert r.status_code == 403, persona
