"""Public reference reads against the real loaded COG."""

from __future__ import annotations

import httpx
import pytest


async def test_lille_with_departement_epci_and_population(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/territories/communes/59350")
    assert r.status_code == 200
    body = r.json()
    assert body["name"] == "Lille"
    assert body["departement"] == "59"
    assert body["epci"] == "200093201"
    assert body["population"] > 200_000
    assert "59000" in body["postal_codes"]


async def test_corsican_code_keeps_its_letters(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/territories/communes/2A004")
    assert r.status_code == 200
    assert r.json()["name"] == "Ajaccio"
    assert r.json()["departement"] == "2A"


async def test_metropole_europeenne_de_lille_has_95_members(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/territories/epci/200093201")
    assert r.status_code == 200
    members = r.json()["members"]
    assert len(members) == 95
    assert {"code": "59350", "name": "Lille"} in [
        {"code": m["code"], "name": m["name"]} for m in members
    ]


async def test_departement_counts_its_communes(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/territories/departements/59")
    assert r.status_code == 200
    body = r.json()
    assert body["name"] == "Nord"
    assert body["communes_count"] > 600
    assert body["population"] > 2_000_000


async def test_catalogue_lists_the_18_seeded_competences(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/competences")
    assert r.status_code == 200
    by_code = {c["code"]: c for c in r.json()}
    assert len(by_code) == 18
    assert by_code["rsa"]["legal_holder_kinds"] == ["departement"]
    assert set(by_code["rsa"]["delegable_to"]) == {
        "ccas",
        "cias",
        "association",
        "organisme_social",
    }
    assert by_code["ase"]["delegable_to"] == []
    assert by_code["ase"]["sensitive"] is True
    assert by_code["violences"]["sensitive"] is True
    assert "plateforme" not in by_code["accueil"]["legal_holder_kinds"]


@pytest.mark.parametrize("q", ["saint etienne", "SAINT-ÉTIENNE", "Saint Étienne", "saint-etienne"])
async def test_search_ignores_accents_case_and_hyphens(client: httpx.AsyncClient, q: str) -> None:
    r = await client.get("/v1/territories/communes", params={"q": q, "limit": 5})
    assert r.status_code == 200
    assert r.json()["items"][0]["code"] == "42218"


async def test_search_requires_every_word(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/territories/communes", params={"q": "villeneuve ascq"})
    names = [c["name"] for c in r.json()["items"]]
    assert names == ["Villeneuve-d'Ascq"]


async def test_filters_by_departement_and_epci(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/territories/communes", params={"departement": "2B", "limit": 200})
    assert r.status_code == 200
    assert r.json()["items"]
    assert {c["departement"] for c in r.json()["items"]} == {"2B"}
    r = await client.get("/v1/territories/communes", params={"epci": "200093201", "q": "roubaix"})
    assert [c["code"] for c in r.json()["items"]] == ["59512"]


async def test_keyset_pages_cover_the_epci_once_each(client: httpx.AsyncClient) -> None:
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"epci": "200093201", "limit": 7}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/v1/territories/communes", params=params)).json()
        seen += [c["code"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 95
    assert len(set(seen)) == 95


@pytest.mark.parametrize(
    "path",
    [
        "/v1/territories/communes/99999",
        "/v1/territories/communes/not-a-code",
        "/v1/territories/epci/123456789",
        "/v1/territories/departements/00",
    ],
)
async def test_unknown_codes_are_404_problems(client: httpx.AsyncClient, path: str) -> None:
    r = await client.get(path)
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "not-found"


@pytest.mark.parametrize("limit", ["0", "10000", "-1", "abc"])
async def test_out_of_range_limit_is_422_with_pointer(
    client: httpx.AsyncClient, limit: str
) -> None:
    r = await client.get("/v1/territories/communes", params={"limit": limit})
    assert r.status_code == 422
    body = r.json()
    assert body["code"] == "validation-error"
    assert body["errors"][0]["pointer"] == "/limit"
    assert body["errors"][0]["in"] == "query"


async def test_forged_cursor_is_422(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/territories/communes", params={"cursor": "bm90LWEtY3Vyc29y"})
    assert r.status_code == 422
    assert r.json()["errors"][0]["pointer"] == "/cursor"


async def test_malformed_epci_filter_is_422(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/territories/communes", params={"epci": "lille"})
    assert r.status_code == 422
    assert r.json()["errors"][0]["pointer"] == "/epci"
