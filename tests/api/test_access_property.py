"""Property test of the access rule over HTTP: for random grants (the roles of the reader,
the convention's ``data_categories``, the referral's ``shared_categories``, before or after
acceptance), the person read by the Secours populaire shows exactly the categories the test
oracle (``tests/oracle.py``) computes, and no field outside them."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from api.auth.permissions import ROLE_CATEGORIES, Role
from api.domain.catalogue import DataCategory
from api.domain.people.visibility import FIELD_CATEGORIES
from tests.api.test_access_leaks import _give_roles, _unique
from tests.api.test_referrals import OVERRIDE
from tests.oracle import Attachment, granted_categories
from tests.world import World

Headers = Callable[[str], dict[str, str]]
CONVENTION = "CONV-AMIENS-SPF-2026"
# what the CCAS may share of a person it follows for aide_facultative (it does not see the NIR)
SHAREABLE = ["contact", "household", "resources", "situation", "notes"]
CATEGORIES = sorted(c.value for c in DataCategory)


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    roles=st.sampled_from([["agent"], ["accueil"], ["accueil", "agent"]]),
    convention=st.sets(st.sampled_from(CATEGORIES)),
    shared=st.sets(st.sampled_from(SHAREABLE)),
    accepted=st.booleans(),
)
async def test_a_person_shows_exactly_the_categories_the_oracle_grants(
    roles: list[str],
    convention: set[str],
    shared: set[str],
    accepted: bool,
    client: httpx.AsyncClient,
    connection: AsyncConnection,
    world: World,
    as_persona: Headers,
) -> None:
    # examples share the test's transaction: start each from the demo's roles
    await _give_roles(connection, world, "association_agent", ["agent"])
    ccas = as_persona("ccas_rsa_agent")
    body = {
        "competence": "aide_facultative",
        "commune": "80021",
        "phone": "06 00 00 00 00",
        "address": {"line1": "1 rue du Port", "postal_code": "80000"},
        "situation": {"housing": "locataire"},
        **_unique(uuid.uuid4()),
    }
    created = await client.post("/v1/beneficiaries", json=body, headers=ccas)
    assert created.status_code == 201, created.text
    pid = created.json()["id"]
    sent = await client.post(
        "/v1/referrals",
        json={
            "beneficiary_id": pid,
            "competence": "aide_alimentaire",
            "recipient_organisation_id": str(world.organisations["secours_populaire"]),
            "need": {"code": "colis_alimentaire", "description": "Colis."},
            "shared_categories": ["identity", *sorted(shared)],
            "consent_override": OVERRIDE,
        },
        headers=ccas,
    )
    assert sent.status_code == 201, sent.text
    if accepted:
        done = await client.post(
            f"/v1/referrals/{sent.json()['id']}/accept",
            json={},
            headers=as_persona("association_agent"),
        )
        assert done.status_code == 200, done.text
    convention_id = world.conventions[CONVENTION]
    await connection.execute(
        text(
            "SELECT set_config('guichet.context', 'request', true), "
            "set_config('guichet.organisation_id', :o, true)"
        ),
        {"o": str(world.organisations["ccas_amiens"])},
    )
    await connection.execute(
        text("UPDATE convention SET data_categories = :c WHERE id = :i"),
        {"c": sorted(convention), "i": convention_id},
    )
    await _give_roles(connection, world, "association_agent", roles)

    expected = granted_categories(
        [
            Attachment(
                competence="aide_alimentaire",
                sensitive=False,
                source="convention",
                convention_id=convention_id,
                requested=None if accepted else frozenset({"identity", *shared}),
            )
        ],
        role_categories=frozenset().union(*(ROLE_CATEGORIES[Role(r)] for r in roles)),
        sensitive_clearance=False,
        convention_categories={convention_id: convention},
    )
    read = await client.get(f"/v1/beneficiaries/{pid}", headers=as_persona("association_agent"))
    if not expected:
        assert read.status_code == 404, read.text
        return
    assert read.status_code == 200, read.text
    shown = read.json()
    assert set(shown["categories"]) == {c.value for c in expected}
    for field, category in FIELD_CATEGORIES.items():
        if category not in expected:
            assert shown.get(field) is None, (field, category, expected)
    if DataCategory.CONTACT in expected:
        assert shown["phone"] == body["phone"]
