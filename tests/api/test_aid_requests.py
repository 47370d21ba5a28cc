"""Aid requests over HTTP: the CCAS instructs and decides its own, an association instructs
food aid the CCAS decides; assessment at submission, levels, ceilings and derogations,
refusal codes, bad inputs refused naming the field with nothing written, visibility."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from api.db.context import DbContext, set_db_context
from api.db.engine import owner_connection
from api.domain.aids.repository.retention import anonymise_aid_requests
from tests.api.aids_support import Headers, add_personas, aid_person, generous_rules
from tests.world import World


@pytest.fixture(autouse=True)
async def _personas(world: World, database_url: URL) -> None:
    await add_personas(world, database_url)


async def open_request(
    client: httpx.AsyncClient,
    as_persona: Headers,
    person: str,
    persona: str = "ccas_rsa_agent",
    **overrides: Any,
) -> httpx.Response:
    body: dict[str, Any] = {
        "beneficiary_id": person,
        "aid_code": "bon_alimentaire",
        "amount_asked": "60",
        "form": "bon",
        "reason": "Fin de mois difficile après une régularisation de charges.",
    }
    body.update(overrides)
    return await client.post("/v1/aid-requests", json=body, headers=as_persona(persona))


async def act(
    client: httpx.AsyncClient,
    as_persona: Headers,
    request: str,
    action: str,
    persona: str = "ccas_rsa_agent",
    body: dict[str, Any] | None = None,
) -> httpx.Response:
    return await client.post(
        f"/v1/aid-requests/{request}/{action}", json=body or {}, headers=as_persona(persona)
    )


async def submitted(
    client: httpx.AsyncClient, as_persona: Headers, amount: str = "60", **person: Any
) -> str:
    await generous_rules(client, as_persona)
    who = await aid_person(client, as_persona, **person)
    created = await open_request(client, as_persona, who, amount_asked=amount)
    assert created.status_code == 201, created.text
    request = str(created.json()["id"])
    r = await act(client, as_persona, request, "submit")
    assert r.status_code == 200, r.text
    return request


async def test_the_ccas_instructs_assesses_and_grants_its_own(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    await generous_rules(client, as_persona)
    person = await aid_person(client, as_persona)
    created = await open_request(client, as_persona, person)
    assert created.status_code == 201, created.text
    request = created.json()
    assert created.headers["etag"] == '"1"'
    assert request["status"] == "draft" and request["assessment"] is None
    assert request["grantor_organisation_id"] == str(world.organisations["ccas_amiens"])
    assert request["allowed_actions"] == ["submit", "cancel"]

    r = await act(client, as_persona, request["id"], "submit")
    assert r.status_code == 200, r.text
    assessment = r.json()["assessment"]
    # alone, (900 − 600) / 30 / 1 UC
    assert assessment["reste_a_vivre_per_day_per_uc"] == "10.00"
    assert assessment["uc"] == "1.00" and assessment["household_size"] == 1
    assert assessment["required_level"] == "agent"
    assert assessment["history_12_months"] == {"count": 0, "amount": "0.00"}
    checks = {c["rule"]: c["result"] for c in assessment["checks"]}
    assert checks["reste_a_vivre_max"] == "pass" and checks["max_per_request"] == "pass"
    assert r.json()["allowed_actions"] == ["schedule", "grant", "refuse", "adjourn", "cancel"]

    granted = await act(client, as_persona, request["id"], "grant", body={"amount": "50"})
    assert granted.status_code == 200, granted.text
    body = granted.json()
    assert (body["status"], body["amount_granted"], body["decision_level"]) == (
        "granted",
        "50.00",
        "agent",
    )
    assert [e["action"] for e in body["events"]] == ["create", "submit", "grant"]
    timeline = await client.get(
        f"/v1/beneficiaries/{person}/timeline", headers=as_persona("ccas_rsa_agent")
    )
    assert timeline.status_code == 200, timeline.text
    types = [i["type"] for i in timeline.json()["items"] if i["id"] == request["id"]]
    assert sorted(types) == [
        "aid_request.created",
        "aid_request.status_changed",
        "aid_request.status_changed",
    ]
    # the second request of the household sees the first in its 12-month history
    second = await open_request(client, as_persona, person, amount_asked="30")
    again = await act(client, as_persona, second.json()["id"], "submit")
    assert again.json()["assessment"]["history_12_months"] == {"count": 1, "amount": "50.00"}


async def test_levels_ceilings_and_derogations(
    client: httpx.AsyncClient, as_persona: Headers, connection: AsyncConnection
) -> None:
    request = await submitted(client, as_persona, amount="200")
    read = await client.get(f"/v1/aid-requests/{request}", headers=as_persona("ccas_rsa_agent"))
    assert read.json()["required_level"] == "decideur"
    # an agent may not decide a decideur's request
    assert (
        await act(client, as_persona, request, "grant", body={"amount": "200"})
    ).status_code == 403
    # 200 > 150 per request: a breach, refused without a derogation, nothing written
    breach = await act(client, as_persona, request, "grant", "ccas_decideur", {"amount": "200"})
    assert breach.status_code == 409, breach.text
    assert breach.json()["code"] == "aid-rule-breach"
    assert breach.json()["breaches"] == ["max_per_request"]
    assert breach.json()["errors"][0]["pointer"] == "/amount"
    unchanged = await client.get(f"/v1/aid-requests/{request}", headers=as_persona("ccas_decideur"))
    assert unchanged.json()["status"] == "submitted"
    assert unchanged.headers["etag"] == read.headers["etag"]
    # more than asked is never granted
    over = await act(client, as_persona, request, "grant", "ccas_decideur", {"amount": "250"})
    assert over.status_code == 422 and over.json()["errors"][0]["pointer"] == "/amount"
    derogation = {"amount": "200", "derogation": {"justification": "Coupure imminente."}}
    granted = await act(client, as_persona, request, "grant", "ccas_decideur", derogation)
    assert granted.status_code == 200, granted.text
    assert granted.json()["derogation"] is True
    assert granted.json()["derogation_justification"] == "Coupure imminente."
    audited = await connection.scalar(
        text("SELECT count(*) FROM audit_entry WHERE action = 'aid_request.grant'")
    )
    assert audited and audited >= 1


async def test_wrong_state_is_409_with_the_allowed_actions(
    client: httpx.AsyncClient, as_persona: Headers
) -> None:
    await generous_rules(client, as_persona)
    person = await aid_person(client, as_persona)
    draft = (await open_request(client, as_persona, person)).json()["id"]
    r = await act(client, as_persona, draft, "grant", body={"amount": "10"})
    assert r.status_code == 409
    assert r.json()["code"] == "invalid-transition"
    assert r.json()["allowed_actions"] == ["submit", "cancel"]


async def test_refusal_needs_a_reason_code(client: httpx.AsyncClient, as_persona: Headers) -> None:
    request = await submitted(client, as_persona)
    assert (await act(client, as_persona, request, "refuse")).status_code == 422
    bad = await act(client, as_persona, request, "refuse", body={"reason_code": "pas_envie"})
    assert bad.status_code == 422
    r = await act(
        client, as_persona, request, "refuse", body={"reason_code": "ressources_suffisantes"}
    )
    assert r.status_code == 200 and r.json()["refusal_reason"] == "ressources_suffisantes"
    assert r.json()["allowed_actions"] == []


async def test_adjourned_then_resubmitted_and_cancelled(
    client: httpx.AsyncClient, as_persona: Headers
) -> None:
    request = await submitted(client, as_persona)
    r = await act(client, as_persona, request, "adjourn", body={"comment": "Facture manquante."})
    assert r.status_code == 200 and r.json()["status"] == "adjourned"
    edit = await client.patch(
        f"/v1/aid-requests/{request}",
        json={"amount_asked": "45"},
        headers={**as_persona("ccas_rsa_agent"), "If-Match": r.headers["etag"]},
    )
    assert edit.status_code == 200, edit.text
    stale = await client.patch(
        f"/v1/aid-requests/{request}",
        json={"amount_asked": "40"},
        headers={**as_persona("ccas_rsa_agent"), "If-Match": r.headers["etag"]},
    )
    assert stale.status_code == 412
    missing = await client.patch(
        f"/v1/aid-requests/{request}",
        json={"amount_asked": "40"},
        headers=as_persona("ccas_rsa_agent"),
    )
    assert missing.status_code == 428
    again = await act(client, as_persona, request, "submit")
    assert again.status_code == 200 and again.json()["status"] == "submitted"
    cancelled = await act(client, as_persona, request, "cancel")
    assert cancelled.json()["status"] == "cancelled"


@pytest.mark.parametrize(
    ("overrides", "pointer"),
    [
        ({"aid_code": "bon_inconnu"}, "/aid_code"),
        ({"form": "numeraire"}, "/form"),
        ({"form": "virement"}, "/form"),
        ({"amount_asked": "-5"}, "/amount_asked"),
        ({"amount_asked": "0"}, "/amount_asked"),
        ({"amount_asked": "1e9"}, "/amount_asked"),
        ({"amount_asked": "12.345"}, "/amount_asked"),
        ({"payee": {"kind": "creditor", "siret": "123"}}, "/payee/siret"),
    ],
)
async def test_bad_requests_name_the_field_and_write_nothing(
    client: httpx.AsyncClient, as_persona: Headers, overrides: dict[str, Any], pointer: str
) -> None:
    await generous_rules(client, as_persona)
    person = await aid_person(client, as_persona)
    r = await open_request(client, as_persona, person, **overrides)
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["pointer"] == pointer
    listed = await client.get(
        "/v1/aid-requests", params={"beneficiary_id": person}, headers=as_persona("ccas_rsa_agent")
    )
    assert listed.json()["items"] == []


async def test_an_association_instructs_and_the_ccas_decides(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    """CONV-AMIENS-SPF-2026: the Secours populaire holds aide_alimentaire on Amiens by
    convention — it instructs the baskets, the CCAS validates them."""
    await generous_rules(client, as_persona)
    person = await aid_person(client, as_persona, persona="association_agent")
    created = await open_request(client, as_persona, person, "association_agent")
    assert created.status_code == 201, created.text
    request = created.json()
    assert request["instructing_organisation_id"] == str(world.organisations["secours_populaire"])
    assert request["grantor_organisation_id"] == str(world.organisations["ccas_amiens"])
    url = f"/v1/aid-requests/{request['id']}"
    # a draft stays with its instructor
    assert (await client.get(url, headers=as_persona("ccas_rsa_agent"))).status_code == 404
    submitted = await act(client, as_persona, request["id"], "submit", "association_agent")
    assert submitted.status_code == 200, submitted.text
    assert submitted.json()["allowed_actions"] == ["cancel"]
    # the grantor joined the person's care team for the competence: it sees and decides
    seen = await client.get(url, headers=as_persona("ccas_rsa_agent"))
    assert seen.status_code == 200
    assert seen.json()["allowed_actions"] == ["schedule", "grant", "refuse", "adjourn"]
    # the instructor may not decide
    assert (
        await act(client, as_persona, request["id"], "grant", "association_agent", {"amount": "60"})
    ).status_code == 403
    granted = await act(client, as_persona, request["id"], "grant", body={"amount": "60"})
    assert granted.status_code == 200, granted.text
    # the delegate sees the decision on what it instructed
    decided = await client.get(url, headers=as_persona("association_agent"))
    assert decided.json()["status"] == "granted" and decided.json()["amount_granted"] == "60.00"
    # a third partner: 404, like a request that does not exist
    for third in ("ccas_agent", "cias_agent", "departement_agent", "mission_locale_agent"):
        if third in world.personas:
            assert (await client.get(url, headers=as_persona(third))).status_code == 404
    listed = await client.get("/v1/aid-requests", headers=as_persona("ccas_agent"))
    assert request["id"] not in [i["id"] for i in listed.json()["items"]]


async def test_the_feed_announces_ids_only_to_who_may_see(
    client: httpx.AsyncClient, world: World, as_persona: Headers, connection: AsyncConnection
) -> None:
    """The events written with the changes, and the feed's visibility check taught the aid
    types (the feed itself serves committed events only: tests/api/test_changes.py)."""
    request = await submitted(client, as_persona)
    assert (await act(client, as_persona, request, "grant", body={"amount": "40"})).is_success
    session = AsyncSession(bind=connection)
    await set_db_context(
        session, context=DbContext.REQUEST, organisation_id=world.organisations["ccas_amiens"]
    )
    rows = (
        await session.execute(
            text(
                "SELECT action, event, status FROM change_event WHERE resource_id = :r ORDER BY id"
            ),
            {"r": request},
        )
    ).all()
    assert [tuple(r) for r in rows] == [
        ("created", "aid_request.created", "draft"),
        ("status_changed", "aid_request.status_changed", "submitted"),
        ("status_changed", "aid_request.status_changed", "granted"),
    ]
    probe = text("SELECT guichet_can_see('aid_request', :r)")
    assert await session.scalar(probe, {"r": request}) is True
    await set_db_context(
        session, context=DbContext.REQUEST, organisation_id=world.organisations["ccas_corbie"]
    )
    assert await session.scalar(probe, {"r": request}) is False


async def test_retention_keeps_an_anonymised_trace_of_the_decision(
    committing_client: httpx.AsyncClient, as_persona: Headers, database_url: URL
) -> None:
    """Committed for real: the purge's anonymiser runs as the owner, in its own transaction."""
    c = committing_client
    await generous_rules(c, as_persona, valid_from="2025-05-03")
    person = await aid_person(c, as_persona)
    request = (await open_request(c, as_persona, person)).json()["id"]
    assert (await act(c, as_persona, request, "submit")).is_success
    derogation = {"amount": "60", "derogation": {"justification": "Situation de M. X"}}
    assert (await act(c, as_persona, request, "grant", "ccas_decideur", derogation)).is_success
    async with owner_connection(database_url) as conn:
        await anonymise_aid_requests(conn, [uuid.UUID(person)], datetime.now(UTC))
        row = (
            await conn.execute(
                text(
                    "SELECT reason, derogation_justification, budget_snapshot, assessment, "
                    "status, amount_granted, reste_a_vivre, household_size, commune_code, "
                    "aid_code FROM aid_request WHERE id = :r"
                ),
                {"r": request},
            )
        ).one()
        comments = await conn.scalar(
            text("SELECT count(comment) FROM aid_request_event WHERE request_id = :r"),
            {"r": request},
        )
    assert (row.reason, row.derogation_justification, row.budget_snapshot) == ("", None, None)
    assert "monthly_resources" not in row.assessment and row.assessment["anonymised"] is True
    assert comments == 0
    # the decision's trace, for the statistics
    assert (row.status, str(row.amount_granted), str(row.reste_a_vivre)) == (
        "granted",
        "60.00",
        "10.00",
    )
    assert (row.household_size, row.commune_code, row.aid_code) == (1, "80021", "bon_alimentaire")
