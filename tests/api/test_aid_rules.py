"""Règlements over HTTP: published by a granting organisation's admin, versioned, public to
read; bad rules answered 422 naming the item, nothing written; and the comparison between
communes checked against a hand-computed table."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import URL

from tests.api.aids_support import (
    GENEROUS,
    ON,
    STRICT,
    Headers,
    add_personas,
    publish,
)
from tests.world import World


@pytest.fixture(autouse=True)
async def _personas(world: World, database_url: URL) -> None:
    await add_personas(world, database_url)


async def test_a_ccas_publishes_and_anyone_reads(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    r = await publish(client, as_persona, GENEROUS, "ccas_admin")
    assert r.status_code == 201, r.text
    rules = r.json()
    assert r.headers["location"] == f"/v1/aid-rules/{rules['id']}"
    assert rules["organisation_id"] == str(world.organisations["ccas_amiens"])
    first = rules["aids"][0]
    # default communes: where the CCAS holds the competence (its commune)
    assert first["communes"] == ["80021"]
    assert first["decision"][0] == {"up_to": "80.00", "by": "agent"}
    read = await client.get(f"/v1/aid-rules/{rules['id']}")
    assert read.status_code == 200 and read.json() == rules
    listed = await client.get("/v1/aid-rules", params={"commune": "80021", "on": ON})
    assert [i["id"] for i in listed.json()["items"]] == [rules["id"]]
    assert (await client.get("/v1/aid-rules", params={"commune": "80212", "on": ON})).json()[
        "items"
    ] == [] or all(
        i["organisation_id"] != str(world.organisations["ccas_amiens"])
        for i in (await client.get("/v1/aid-rules", params={"commune": "80212"})).json()["items"]
    )


def _with(aid: dict[str, Any], **changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(GENEROUS)
    body["aids"][0] = {**body["aids"][0], **aid, **changes}
    return body


@pytest.mark.parametrize(
    ("persona", "body", "pointer"),
    [
        # the département is no legal holder of aide_alimentaire
        ("departement_admin", GENEROUS, "/aids/0/competence"),
        # the CCAS d'Amiens holds nothing on Corbie
        ("ccas_admin", _with({}, communes=["80021", "80212"]), "/aids/0/communes/1"),
        (
            "ccas_admin",
            _with({}, decision=[{"up_to": 300, "by": "agent"}, {"up_to": 80, "by": "decideur"}]),
            "/aids/0/decision/1",
        ),
        ("ccas_admin", _with({}, communes=["99999"]), "/aids/0/communes/0"),
    ],
)
async def test_bad_rules_name_the_item_and_write_nothing(
    client: httpx.AsyncClient,
    world: World,
    as_persona: Headers,
    persona: str,
    body: dict[str, Any],
    pointer: str,
) -> None:
    r = await publish(client, as_persona, body, persona)
    assert r.status_code == 422, r.text
    assert pointer in [e["pointer"] for e in r.json()["errors"]]
    organisation = world.personas[persona].organisation_id
    listed = await client.get("/v1/aid-rules", params={"organisation_id": str(organisation)})
    assert all(i["valid_from"] != GENEROUS["valid_from"] for i in listed.json()["items"])


async def test_bad_amounts_are_refused(client: httpx.AsyncClient, as_persona: Headers) -> None:
    for bad in (-5, 0, 10**9, "12.345"):
        r = await publish(client, as_persona, _with({}, max_per_request=bad), "ccas_admin")
        assert r.status_code == 422, (bad, r.text)
        assert r.json()["errors"][0]["pointer"].startswith("/aids/0/max_per_request")
    r = await publish(client, as_persona, _with({}, forms=["virement"]), "ccas_admin")
    assert r.status_code == 422


async def test_only_the_admin_publishes(client: httpx.AsyncClient, as_persona: Headers) -> None:
    assert (await publish(client, as_persona, GENEROUS, "ccas_rsa_agent")).status_code == 403
    assert (await publish(client, as_persona, GENEROUS, "anonymous")).status_code == 401


async def test_a_second_version_supersedes_the_first(
    client: httpx.AsyncClient, as_persona: Headers
) -> None:
    first = (await publish(client, as_persona, GENEROUS, "ccas_admin")).json()
    later = {**GENEROUS, "valid_from": "2026-09-01", "title": "Version de septembre"}
    second = (await publish(client, as_persona, later, "ccas_admin")).json()
    same_day = await publish(client, as_persona, later, "ccas_admin")
    assert same_day.status_code == 422
    assert same_day.json()["errors"][0]["pointer"] == "/valid_from"
    in_july = await client.get("/v1/aid-rules", params={"commune": "80021", "on": ON})
    in_october = await client.get("/v1/aid-rules", params={"commune": "80021", "on": "2026-10-01"})
    assert first["id"] in [i["id"] for i in in_july.json()["items"]]
    assert [i["id"] for i in in_october.json()["items"]] == [second["id"]]


# The comparison, by hand. Generous (Amiens): bon ≤ 150 when RAV ≤ 12; énergie ≤ 300 when
# RAV ≤ 10 (règlement: 600 over 12 months). Strict (Corbie): bon ≤ 80 when RAV ≤ 6; énergie
# ≤ min(150, 100 over 12 months) when RAV ≤ 5.
HOUSEHOLDS = {
    # 1 UC, (900 − 600) / 30 = 10.00
    "alone": ({"adults": 1, "monthly_resources": 900, "monthly_charges": 600}, "10.00", "1.00"),
    # 1 + 0.5 + 0.3 + 0.3 = 2.1 UC, 450 / 30 / 2.1 = 7.14
    "couple_two_children": (
        {"adults": 2, "children_ages": [3, 10], "monthly_resources": 1200, "monthly_charges": 750},
        "7.14",
        "2.10",
    ),
    # 1 + 0.5 (a child of 15 counts as an adult) = 1.5 UC, 90 / 30 / 1.5 = 2.00
    "parent_teenager": (
        {"adults": 1, "children_ages": [15], "monthly_resources": 700, "monthly_charges": 610},
        "2.00",
        "1.50",
    ),
}
# household → (commune, aid) → (eligible, max_amount, failing_rules)
EXPECTED = {
    "alone": {
        ("80021", "bon_alimentaire"): (True, "150.00", []),
        ("80021", "aide_energie"): (True, "300.00", []),
        ("80212", "bon_alimentaire"): (False, "0", ["reste_a_vivre_max"]),
        ("80212", "aide_energie"): (False, "0", ["reste_a_vivre_max"]),
    },
    "couple_two_children": {
        ("80021", "bon_alimentaire"): (True, "150.00", []),
        ("80021", "aide_energie"): (True, "300.00", []),
        ("80212", "bon_alimentaire"): (False, "0", ["reste_a_vivre_max"]),
        ("80212", "aide_energie"): (False, "0", ["reste_a_vivre_max"]),
    },
    "parent_teenager": {
        ("80021", "bon_alimentaire"): (True, "150.00", []),
        ("80021", "aide_energie"): (True, "300.00", []),
        ("80212", "bon_alimentaire"): (True, "80.00", []),
        ("80212", "aide_energie"): (True, "100.00", []),
    },
}


@pytest.mark.parametrize("household", sorted(HOUSEHOLDS))
async def test_the_comparison_matches_the_hand_computed_table(
    client: httpx.AsyncClient, as_persona: Headers, household: str
) -> None:
    assert (await publish(client, as_persona, GENEROUS, "ccas_admin")).status_code == 201
    assert (await publish(client, as_persona, STRICT, "corbie_admin")).status_code == 201
    described, reste, uc = HOUSEHOLDS[household]
    r = await client.post(
        "/v1/aid-rules/compare",
        json={"communes": ["80021", "80212"], "household": described, "on": ON},
    )
    assert r.status_code == 200, r.text
    answer = r.json()
    assert (answer["reste_a_vivre_per_day_per_uc"], answer["uc"]) == (reste, uc)
    found = {
        (i["commune"], i["aid"]["code"]): (
            i["eligible"],
            str(Decimal(i["max_amount"])),
            i["failing_rules"],
        )
        for i in answer["items"]
    }
    expected = {k: (e, str(Decimal(m)), f) for k, (e, m, f) in EXPECTED[household].items()}
    assert found == expected


async def test_the_comparison_over_an_epci_and_bad_territories(client: httpx.AsyncClient) -> None:
    household = {"adults": 1, "monthly_resources": 900, "monthly_charges": 600}
    r = await client.post(
        "/v1/aid-rules/compare", json={"epci": "248000531", "household": household}
    )
    assert r.status_code == 200 and r.json()["communes"] > 30
    both = await client.post(
        "/v1/aid-rules/compare",
        json={"epci": "248000531", "communes": ["80021"], "household": household},
    )
    assert both.status_code == 422
    unknown = await client.post(
        "/v1/aid-rules/compare", json={"communes": ["80021", "99999"], "household": household}
    )
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["pointer"] == "/communes/1"
