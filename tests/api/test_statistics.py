"""Steering statistics over HTTP: territorial counts with disclosure control, who may read
them, and sensitive competences only at département level."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.engine import URL

from api.auth.tokens import issue_access_token
from api.db.engine import owner_connection
from api.domain import clock
from tests.api.people_support import Headers, create
from tests.world import World

CORBIE = "80212"
VAL_DE_SOMME = "248000499"


def _period() -> dict[str, str]:
    today = clock.today()
    return {"from": f"{today.year}-01-01", "to": today.isoformat()}


async def _stats(
    client: httpx.AsyncClient, headers: dict[str, str], measure: str, **params: str
) -> httpx.Response:
    return await client.get(
        f"/v1/statistics/{measure}", params={**_period(), **params}, headers=headers
    )


async def _people_in_corbie(client: httpx.AsyncClient, as_persona: Headers) -> None:
    """Seven people aged 25-39 and two aged 75 or more, recorded by the CCAS de Corbie."""
    agent = as_persona("ccas_agent")
    for i in range(7):
        await create(
            client,
            agent,
            birth_name=f"Statjeune{i}",
            birth_date=f"199{i}-03-0{i + 1}",
            commune=CORBIE,
        )
    for i in range(2):
        await create(
            client,
            agent,
            birth_name=f"Statancien{i}",
            birth_date=f"194{i}-05-1{i}",
            commune=CORBIE,
        )


def _published_counts(body: dict[str, Any]) -> list[int]:
    counts = [c["count"] for c in body["cells"] if c["count"] is not None]
    if body["total"]["count"] is not None:
        counts.append(body["total"]["count"])
    return counts


async def test_people_by_age_band_hide_the_small_cell_and_its_complement(
    client: httpx.AsyncClient, as_persona: Headers
) -> None:
    await _people_in_corbie(client, as_persona)
    for persona in ("pilotage", "client_without_scopes"):  # the stats:read client
        r = await _stats(
            client, as_persona(persona), "people", territory=f"commune:{CORBIE}", by="age_band"
        )
        assert r.status_code == 200, r.text
        body = r.json()
        cells = {c["age_band"]: c for c in body["cells"]}
        assert cells["75+"] == {
            "age_band": "75+",
            "count": None,
            "per_1000": None,
            "suppressed": True,
        }
        # 25-39 alone would give 75+ away as the total minus it
        assert cells["25-39"]["suppressed"] is True and cells["25-39"]["count"] is None
        assert body["total"]["count"] == 9 and body["total"]["suppressed"] is False
        assert body["suppression"] == {"threshold": 5, "primary": 1, "secondary": 1}
        assert all(not 0 < n < 5 for n in _published_counts(body))
        assert body["territory"] == f"commune:{CORBIE}" and body["population"] > 0
    # the CC du Val de Somme, Corbie's EPCI; Corbie has 5,982 inhabitants
    by_commune = await _stats(
        client, as_persona("pilotage"), "people", territory=f"epci:{VAL_DE_SOMME}", by="commune"
    )
    assert by_commune.status_code == 200, by_commune.text
    corbie = next(c for c in by_commune.json()["cells"] if c["commune"] == CORBIE)
    assert corbie["count"] == 9
    assert corbie["per_1000"] == round(9 * 1000 / 5982, 2)


async def test_two_dimensions_never_publish_a_small_count(
    client: httpx.AsyncClient, as_persona: Headers
) -> None:
    await _people_in_corbie(client, as_persona)
    r = await _stats(
        client,
        as_persona("pilotage"),
        "people",
        territory="departement:80",
        by="commune,age_band",
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert all(not 0 < n < 5 for n in _published_counts(body))
    for cell in body["cells"]:
        assert (cell["count"] is None) == cell["suppressed"]
        assert set(cell) >= {"commune", "age_band", "count", "per_1000", "suppressed"}


async def test_who_may_read_statistics(
    client: httpx.AsyncClient,
    as_persona: Headers,
    app: FastAPI,
    world: World,
    database_url: URL,
) -> None:
    for persona in ("ccas_agent", "departement_agent", "dpo", "org_admin", "client_with_scopes"):
        r = await _stats(client, as_persona(persona), "people", territory="departement:80")
        assert r.status_code == 403, persona
        assert r.headers["content-type"] == "application/problem+json"
    assert (await _stats(client, {}, "people", territory="departement:80")).status_code == 401
    # a CCAS's pilotage reads its commune, not the département nor a neighbour
    ccas_pilotage = await _pilotage_of_ccas_amiens(app, world, database_url)
    assert (
        await _stats(client, ccas_pilotage, "people", territory="commune:80021")
    ).status_code == 200
    for territory in ("departement:80", f"commune:{CORBIE}", f"epci:{VAL_DE_SOMME}"):
        r = await _stats(client, ccas_pilotage, "people", territory=territory)
        assert r.status_code == 403, territory


async def test_bad_questions_are_422_naming_the_parameter(
    client: httpx.AsyncClient, as_persona: Headers
) -> None:
    pilotage = as_persona("pilotage")
    cases = {
        ("people", "departement:80", "age_band,status"): "/by",
        ("people", "departement:80", "sex,age_band,commune,month"): "/by",
        ("people", "departement:80", "sex,sex"): "/by",
        ("people", "canton:12", ""): "/territory",
        ("people", "commune:99999", ""): "/territory",
    }
    for (measure, territory, by), pointer in cases.items():
        r = await _stats(client, pilotage, measure, territory=territory, by=by)
        assert r.status_code == 422, (territory, by, r.text)
        assert r.json()["errors"][0]["pointer"] == pointer
    r = await client.get(
        "/v1/statistics/people",
        params={"territory": "departement:80", "from": "2026-05-01", "to": "2026-01-01"},
        headers=pilotage,
    )
    assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == "/to"
    assert (
        await _stats(client, pilotage, "potatoes", territory="departement:80")
    ).status_code == 404


async def test_sensitive_competences_only_at_departement_level(
    client: httpx.AsyncClient, as_persona: Headers
) -> None:
    sensitive = as_persona("departement_sensitive")
    for i in range(6):
        await create(
            client,
            sensitive,
            competence="violences",
            birth_name=f"Statprot{i}",
            birth_date=f"198{i}-02-0{i + 1}",
            commune=CORBIE,
        )
    pilotage = as_persona("pilotage")
    local = await _stats(client, pilotage, "people", territory=f"commune:{CORBIE}", by="competence")
    assert local.status_code == 200
    assert "violences" not in {c["competence"] for c in local.json()["cells"]}
    wide = await _stats(client, pilotage, "people", territory="departement:80", by="competence")
    violences = next(c for c in wide.json()["cells"] if c["competence"] == "violences")
    assert violences["count"] is None or violences["count"] >= 6


async def test_referral_delays_are_medians_in_working_days(
    client: httpx.AsyncClient, as_persona: Headers, world: World
) -> None:
    from tests.api.test_referrals import act, person_of_ccas, send

    for i in range(5):  # answered the same day: every delay is 0 working days
        person = await person_of_ccas(
            client, as_persona, birth_name=f"Statdelai{i}", birth_date=f"198{i}-02-0{i + 1}"
        )
        referral = await send(client, as_persona, world, person)
        for action, body in (
            ("acknowledge", {}),
            ("accept", {}),
            ("start", {}),
            ("complete", {"outcome_code": "service_rendu"}),
        ):
            answered = await act(
                client, as_persona, "association_agent", referral["id"], action, **body
            )
            assert answered.status_code == 200, answered.text
    r = await _stats(
        client, as_persona("pilotage"), "referrals", territory="commune:80021", by="status"
    )
    assert r.status_code == 200, r.text
    completed = next(c for c in r.json()["cells"] if c["status"] == "completed")
    assert completed["count"] >= 5
    assert completed["median_days"] == {"acknowledged": 0, "accepted": 0, "completed": 0}


async def test_working_days_in_the_database_match_the_calendar(database_url: URL) -> None:
    from datetime import date, timedelta

    from api.domain.calendar import working_days_between

    start = date(2026, 4, 30)  # 1 May, 8 May, Ascension and Whit Monday ahead
    async with owner_connection(database_url) as conn:
        for days in (0, 1, 3, 9, 10, 25, 40):
            end = start + timedelta(days=days)
            sql = await conn.scalar(
                text("SELECT guichet_working_days(:a, :b)"), {"a": start, "b": end}
            )
            assert sql == working_days_between(start, end), end


async def _pilotage_of_ccas_amiens(app: FastAPI, world: World, database_url: URL) -> dict[str, str]:
    organisation = world.organisations["ccas_amiens"]
    async with owner_connection(database_url) as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT u.id, m.roles FROM app_user u JOIN membership m ON m.user_id = u.id "
                    "WHERE u.email = 'pilotage.ccas-amiens@somme.demo' AND m.organisation_id = :o"
                ),
                {"o": organisation},
            )
        ).one()
    token, _ = issue_access_token(
        app.state.keyring,
        app.state.settings,
        subject=str(row.id),
        kind="user",
        organisation_id=organisation,
        roles=row.roles,
        scopes=(),
    )
    return {"Authorization": f"Bearer {token}"}


async def test_unmet_needs_count_declined_referrals_and_uncovered_competences(
    client: httpx.AsyncClient, as_persona: Headers, world: World
) -> None:
    from tests.api.test_referrals import act, person_of_ccas, send

    for i in range(6):
        person = await person_of_ccas(
            client, as_persona, birth_name=f"Statrefus{i}", birth_date=f"197{i}-04-0{i + 1}"
        )
        referral = await send(client, as_persona, world, person)
        assert (
            await act(client, as_persona, "association_agent", referral["id"], "acknowledge")
        ).status_code == 200
        declined = await act(
            client,
            as_persona,
            "association_agent",
            referral["id"],
            "decline",
            reason_code="pas_de_capacite",
        )
        assert declined.status_code == 200, declined.text
    r = await client.get(
        "/v1/statistics/unmet-needs",
        params={"territory": "departement:80", **_period()},
        headers=as_persona("pilotage"),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    cells = {(c["competence"], c["reason"]): c for c in body["declined"]["cells"]}
    assert cells[("aide_alimentaire", "pas_de_capacite")]["count"] >= 6
    # acknowledged the day they were sent: a median of 0 working days
    by_status = await _stats(
        client, as_persona("pilotage"), "referrals", territory="commune:80021", by="status"
    )
    declined = next(c for c in by_status.json()["cells"] if c["status"] == "declined")
    assert declined["count"] >= 6
    assert declined["median_days"]["acknowledged"] == 0
    uncovered = {u["competence"]: u for u in body["uncovered"]}
    # Abbeville has no CCAS, CIAS or commune account; the département covers the RSA everywhere
    assert "80001" in uncovered["aide_facultative"]["communes"]
    assert "rsa" not in uncovered
    assert all(not 0 < n < 5 for n in _published_counts(body["expired"]))
    forbidden = await client.get(
        "/v1/statistics/unmet-needs",
        params={"territory": "departement:80"},
        headers=as_persona("departement_agent"),
    )
    assert forbidden.status_code == 403


async def test_aid_requests_are_counted_when_the_aids_exist(
    client: httpx.AsyncClient, as_persona: Headers, database_url: URL
) -> None:
    async with owner_connection(database_url) as conn:
        requests = await conn.scalar(text("SELECT count(*) FROM aid_request"))
        facts = await conn.scalar(text("SELECT count(*) FROM stat_fact WHERE measure = 'aids'"))
    assert facts == requests
    r = await client.get(
        "/v1/statistics/aids",
        params={"territory": "departement:80", "by": "category,decision", "from": "2022-01-01"},
        headers=as_persona("pilotage"),
    )
    assert r.status_code == 200, r.text
    assert r.json()["total"]["count"] in (requests, None)
    assert all(not 0 < (c["count"] or 0) < 5 for c in r.json()["cells"])


async def test_a_pilotage_user_reads_no_personal_data_anywhere(
    client: httpx.AsyncClient, as_persona: Headers
) -> None:
    """The département's pilotage user, whose organisation follows people: every list of
    personal records is refused or empty for it."""
    await _people_in_corbie(client, as_persona)
    pilotage = as_persona("pilotage")
    for path in (
        "/v1/beneficiaries",
        "/v1/beneficiaries/search?birth_date=1990-03-01&last_name=Statjeune0",
        "/v1/referrals?box=inbox",
        "/v1/referrals?box=outbox",
        "/v1/orientations?box=inbox",
        "/v1/dossiers",
        "/v1/aid-requests",
        "/v1/access-requests?box=inbox",
        "/v1/changes",
        "/v1/audit",
    ):
        r = await client.get(path, headers=pilotage)
        assert r.status_code in (403, 404) or r.json().get("items") == [], (path, r.text[:200])
