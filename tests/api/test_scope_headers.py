"""The bearer token and the two headers every scoped route reads (api.auth.deps): a missing
or foreign scheme is a 401 with the bearer challenge, a header out of its type a 422 problem
naming the header, and all three are documented on every scoped operation."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from fastapi import FastAPI

Headers = Callable[[str], dict[str, str]]


@pytest.mark.parametrize(
    "authorization",
    [None, "Basic dXNlcjpwYXNz", "Bearer", "Bearer   ", "Token abc"],
)
async def test_no_bearer_token_is_a_401_with_the_challenge(
    client: httpx.AsyncClient, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    r = await client.get("/v1/me", headers=headers)
    assert r.status_code == 401, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["www-authenticate"] == 'Bearer realm="guichet"'


async def test_the_scheme_is_read_whatever_its_case(
    client: httpx.AsyncClient, as_persona: Headers
) -> None:
    token = as_persona("ccas_rsa_agent")["Authorization"].split(" ", 1)[1]
    r = await client.get("/v1/me", headers={"Authorization": f"bearer {token}"})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    ("name", "value"),
    [("X-Acting-Agent", "a" * 201), ("X-Organisation-Id", "not-a-uuid")],
)
async def test_a_scope_header_out_of_its_type_is_a_422_naming_it(
    client: httpx.AsyncClient, as_persona: Headers, name: str, value: str
) -> None:
    r = await client.get("/v1/me", headers={**as_persona("ccas_rsa_agent"), name: value})
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["code"] == "validation-error"
    assert [(e["pointer"], e["in"]) for e in body["errors"]] == [(f"/{name}", "header")]


async def test_valid_scope_headers_are_accepted(
    client: httpx.AsyncClient, as_persona: Headers
) -> None:
    headers = {
        **as_persona("client_with_scopes"),
        "X-Acting-Agent": "a" * 200,
        "X-Organisation-Id": "7f1c0d52-6a0e-4f7e-9d55-2f3c1c9f0a11",
    }
    r = await client.get("/v1/me", headers=headers)
    assert r.status_code == 200, r.text


def test_every_scoped_operation_documents_the_token_and_the_headers(app: FastAPI) -> None:
    document = app.openapi()
    operation = document["paths"]["/v1/beneficiaries/{beneficiary_id}"]["get"]
    assert {"HTTPBearer": []} in operation["security"]
    names = [(p["in"], p["name"]) for p in operation["parameters"]]
    assert names == [
        ("path", "beneficiary_id"),
        ("header", "X-Acting-Agent"),
        ("header", "X-Organisation-Id"),
    ]
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    public = document["paths"]["/v1/competences"]["get"]
    assert "security" not in public
    assert all(p["in"] != "header" for p in public.get("parameters", []))
