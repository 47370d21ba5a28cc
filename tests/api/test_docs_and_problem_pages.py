"""What a newcomer opens first: /docs without the internet, a login in its Authorize dialog,
a page behind every problem `type`, and errors that point where they should."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx
import pytest
from fastapi import FastAPI

from api.http.docs import problem_descriptions
from api.problems import all_problem_classes


async def test_docs_load_their_assets_from_the_app(client: httpx.AsyncClient) -> None:
    page = await client.get("/docs")
    assert page.status_code == 200
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert assets, page.text
    for url in assets:
        assert url.startswith("/"), f"{url} is loaded from outside the app"
        r = await client.get(url)
        assert r.status_code == 200, url
        assert len(r.content) > 1000, url
    assert "oauth2RedirectUrl" in page.text
    redoc = await client.get("/redoc")
    assert "cdn" not in redoc.text.lower() and "googleapis" not in redoc.text


async def test_only_the_shipped_assets_are_served(client: httpx.AsyncClient) -> None:
    for name in ("core.py", "..%2F__init__.py", "LICENSE"):
        r = await client.get(f"/docs/assets/{name}")
        assert r.status_code == 404, name


def test_authorize_offers_the_password_flow_of_the_token_endpoint(app: FastAPI) -> None:
    document = app.openapi()
    scheme = document["components"]["securitySchemes"]["OAuth2Password"]
    assert scheme["flows"]["password"]["tokenUrl"] == "/v1/auth/token"
    protected = [
        op for item in document["paths"].values() for op in item.values() if op.get("security")
    ]
    assert protected
    for operation in protected:
        assert {"HTTPBearer": []} in operation["security"]
        assert {"OAuth2Password": []} in operation["security"]
    form = document["components"]["schemas"]["Body_token_v1_auth_token_post"]
    assert form["properties"]["grant_type"]["enum"] == [
        "password",
        "client_credentials",
        "refresh_token",
    ]


async def test_the_password_flow_as_swagger_ui_sends_it(
    client: httpx.AsyncClient, as_persona: Callable[[str], dict[str, str]]
) -> None:
    """Swagger UI posts grant_type, username and password (and an empty scope)."""
    from api.demo.territory import DEMO_PASSWORD

    r = await client.post(
        "/v1/auth/token",
        data={
            "grant_type": "password",
            "username": "agent.ccas-amiens@somme.demo",
            "password": DEMO_PASSWORD,
            "scope": "",
        },
    )
    assert r.status_code == 200, r.text
    me = await client.get("/v1/me", headers={"Authorization": f"Bearer {r.json()['access_token']}"})
    assert me.status_code == 200


async def test_an_unknown_grant_type_is_still_an_oauth_error(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/auth/token", data={"grant_type": "implicit"})
    assert r.status_code == 400
    assert r.json()["error"] == "unsupported_grant_type"


async def test_every_problem_type_resolves_to_its_page(client: httpx.AsyncClient) -> None:
    slugs = {cls.slug for cls in all_problem_classes()}
    assert slugs <= set(problem_descriptions())
    for slug in slugs:
        r = await client.get(f"/problems/{slug}")
        assert r.status_code == 200, slug
        assert r.headers["content-type"].startswith("text/html")
        assert f"<h1><code>{slug}</code></h1>" in r.text
    not_found = await client.get("/problems/not-found")
    assert "existence is never revealed" in not_found.text
    missing = await client.get("/problems/no-such-problem")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"


async def test_a_problem_type_uri_is_followable(
    client: httpx.AsyncClient, as_persona: Callable[[str], dict[str, str]]
) -> None:
    problem = (await client.get("/v1/beneficiaries", headers=as_persona("anonymous"))).json()
    page = await client.get(problem["type"])
    assert page.status_code == 200
    assert problem["code"] in page.text


@pytest.mark.parametrize(
    ("body", "position"),
    [(b'{"beneficiary_id": ', 19), (b"{,}", 1), (b'{"a": 1} trailing', 9)],
)
async def test_a_malformed_json_body_points_at_the_body_and_names_the_position(
    client: httpx.AsyncClient,
    as_persona: Callable[[str], dict[str, str]],
    body: bytes,
    position: int,
) -> None:
    r = await client.post(
        "/v1/referrals",
        content=body,
        headers={**as_persona("ccas_rsa_agent"), "Content-Type": "application/json"},
    )
    assert r.status_code == 422, r.text
    problem = r.json()
    assert problem["code"] == "validation-error"
    [error] = problem["errors"]
    assert error["pointer"] == ""
    assert error["in"] == "body"
    assert f"at character {position}" in error["detail"]
    assert problem["detail"].startswith("body: The body is not valid JSON")


async def test_a_nul_character_in_a_query_parameter_is_a_422_naming_it(
    client: httpx.AsyncClient, as_persona: Callable[[str], dict[str, str]]
) -> None:
    """PostgreSQL text cannot hold NUL: it was a 500 once the query reached the database."""
    r = await client.get(
        "/v1/dossiers",
        params={"prestation": "rsa\x00", "limit": 5},
        headers=as_persona("departement_agent"),
    )
    assert r.status_code == 422, r.text
    assert r.json()["errors"] == [
        {
            "pointer": "/prestation",
            "detail": "Text may not contain the NUL character.",
            "in": "query",
        }
    ]
