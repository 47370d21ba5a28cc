"""The database enforces the access rule: the committed inventory of policies and definer
functions matches the schema; every definer function, called as an unrelated organisation,
answers nothing about another partner's person; and row-level security alone (no repository
filter) hides every table's rows from an organisation that has no business with them."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

import api.db.tables  # noqa: F401
from api.db.base import metadata, scoping_of
from api.db.context import DbContext, set_db_context
from api.db.engine import owner_connection
from api.db.inventory import INVENTORY_PATH, definer_functions, render
from api.settings import Settings
from tests.api.aids_support import add_personas, aid_person, generous_rules
from tests.api.people_support import CONSENT
from tests.api.test_access_leaks import _unique
from tests.api.test_aid_requests import act, open_request
from tests.api.test_dossiers import open_dossier, rsa_person
from tests.api.test_referrals import OVERRIDE
from tests.world import World

Headers = Callable[[str], dict[str, str]]


async def test_the_committed_inventory_matches_the_schema(
    database_url: URL, settings: Settings
) -> None:
    async with owner_connection(database_url) as conn:
        rendered = await render(conn, settings.app_role)
    if os.environ.get("GUICHET_WRITE_INVENTORY") == "1":  # the test run's regeneration
        INVENTORY_PATH.write_text(rendered)
    assert INVENTORY_PATH.read_text() == rendered, (
        "api/db/security_inventory.md drifted from the schema: run "
        "`guichet security-inventory` on a migrated database"
    )


async def test_every_definer_function_states_why(database_url: URL, settings: Settings) -> None:
    async with owner_connection(database_url) as conn:
        found = await definer_functions(conn, settings.app_role)
    assert found
    assert [signature for signature, reason, _ in found if not reason.strip()] == []


# a scenario of the CCAS d'Amiens, then the CCAS de Corbie (no business with it) ------------


async def _scenario(client: httpx.AsyncClient, world: World, as_persona: Headers) -> dict[str, Any]:
    """A person of Amiens the CCAS follows for rsa, with every kind of record about them."""
    ccas = as_persona("ccas_rsa_agent")
    identity = _unique(uuid.uuid4())
    person = await rsa_person(client, as_persona, **identity)
    dossier = await open_dossier(client, as_persona, person)
    assert dossier.status_code == 201, dossier.text
    note = await client.post(
        f"/v1/beneficiaries/{person}/notes",
        json={"competence": "rsa", "visibility": "team", "body": "note"},
        headers=ccas,
    )
    assert note.status_code == 201, note.text
    child = {"relation": "enfant", "first_name": "A", "birth_date": "2015-01-01"}
    for path, body in (
        ("household", {"members": [child]}),
        ("budget", {"resources": [{"type": "rsa", "monthly_amount": "600"}], "charges": []}),
    ):
        put = await client.put(f"/v1/beneficiaries/{person}/{path}", json=body, headers=ccas)
        assert put.status_code == 200, put.text
    consent = await client.post(f"/v1/beneficiaries/{person}/consents", json=CONSENT, headers=ccas)
    assert consent.status_code == 201, consent.text
    referral = await client.post(
        "/v1/referrals",
        json={
            "beneficiary_id": person,
            "competence": "aide_alimentaire",
            "recipient_organisation_id": str(world.organisations["secours_populaire"]),
            "need": {"code": "colis_alimentaire", "description": "Colis."},
            "shared_categories": ["identity"],
            "consent_override": OVERRIDE,
        },
        headers=ccas,
    )
    assert referral.status_code == 201, referral.text
    message = await client.post(
        f"/v1/referrals/{referral.json()['id']}/messages", json={"body": "bonjour"}, headers=ccas
    )
    assert message.status_code == 201, message.text
    orientation = await client.post(
        "/v1/orientations",
        json={
            "beneficiary_id": person,
            "competence": "aide_alimentaire",
            "target_organisation_id": str(world.organisations["secours_populaire"]),
            "reason": "colis",
        },
        headers=ccas,
    )
    assert orientation.status_code == 201, orientation.text
    asked = await client.post(
        f"/v1/beneficiaries/{person}/access-requests",
        json={"competence": "aide_facultative", "reason": "aide en cours"},
        headers=as_persona("cias_agent"),
    )
    assert asked.status_code == 201, asked.text
    return {
        "person": uuid.UUID(person),
        "dossier": uuid.UUID(dossier.json()["id"]),
        "note": uuid.UUID(note.json()["id"]),
        "consent": uuid.UUID(consent.json()["id"]),
        "referral": uuid.UUID(referral.json()["id"]),
        "orientation": uuid.UUID(orientation.json()["id"]),
        "identity": identity,
    }


async def _aid_scenario(client: httpx.AsyncClient, as_persona: Headers) -> dict[str, Any]:
    """A person of Amiens the CCAS follows for aide alimentaire, granted an aid by it under
    the règlement it published (a public text: published beforehand by the caller)."""
    person = await aid_person(client, as_persona)
    created = await open_request(client, as_persona, person)
    assert created.status_code == 201, created.text
    request = str(created.json()["id"])
    for action, body in (("submit", None), ("grant", {"amount": "50"})):
        r = await act(client, as_persona, request, action, body=body)
        assert r.status_code == 200, r.text
    return {"aid_person": uuid.UUID(person), "aid_request": uuid.UUID(request)}


async def _as(
    connection: AsyncConnection, world: World, org_key: str, persona: str
) -> AsyncSession:
    session = AsyncSession(bind=connection)
    await set_db_context(
        session,
        context=DbContext.REQUEST,
        organisation_id=world.organisations[org_key],
        principal_id=world.personas[persona].principal_id,
    )
    return session


NOW = datetime(2026, 11, 1, tzinfo=UTC)

# every definer function the runtime role may call → (call, what an outsider must get). The
# placeholders name the scenario's ids; ``public`` marks the one answer that is public.
OUTSIDER_CALLS: dict[str, tuple[str, str]] = {
    "audit_chain_head()": ("SELECT audit_chain_head()", "own"),
    "convention_grants(uuid, date)": (
        "SELECT count(*) FROM convention_grants(:amiens, :today)",
        "0",
    ),
    "convention_holdings(uuid, text, text, date)": (
        "SELECT count(*) FROM convention_holdings(:amiens, 'rsa', '80021', :today)",
        "public",
    ),
    "dossier_person_matches(integer[], uuid[], text[], date[], text[])": (
        "SELECT count(*) FROM dossier_person_matches(ARRAY[0], ARRAY[:person]::uuid[], "
        "ARRAY[NULL]::text[], ARRAY[:birth]::date[], ARRAY['80021'])",
        "0",
    ),
    "end_origin_memberships(uuid, text, timestamp with time zone)": (
        "SELECT end_origin_memberships(:referral, 'x', :now)",
        "0",
    ),
    # staff: enrolling into another organisation is refused before anything is read
    "enrol_member(uuid, text, text, text, text[], timestamp with time zone)": (
        "SELECT count(*) FROM enrol_member(:amiens, 'nouveau@corbie.example', 'x', 'x', "
        "ARRAY['agent'], :now)",
        "refused",
    ),
    "ensure_user(uuid, text, text, text)": (
        "SELECT ensure_user(:random, 'agent.ccas-amiens@somme.demo', 'x', 'x') = :agent",
        "True",
    ),
    "guichet_access(uuid[], text[])": (
        "SELECT count(*) FROM guichet_access(ARRAY[:person]::uuid[], NULL)",
        "0",
    ),
    "guichet_aid_grantor_joins(uuid, uuid, text)": (
        "SELECT guichet_aid_grantor_joins(:aid_person, :amiens, 'aide_alimentaire')",
        "False",
    ),
    "guichet_aid_history(uuid, uuid, date)": (
        "SELECT count(*) FROM guichet_aid_history(:aid_person, :amiens, :year_ago)",
        "0",
    ),
    # the outsider's own money: it granted nothing, and sees nothing of Amiens's grant
    "guichet_aid_money(integer)": ("SELECT count(*) FROM guichet_aid_money(:year)", "0"),
    "guichet_aids_can_see(uuid, text)": (
        "SELECT guichet_aids_can_see(:aid_person, 'aide_alimentaire') "
        "OR guichet_aids_can_see(:person, 'rsa')",
        "False",
    ),
    "guichet_can_see(text, uuid)": (
        "SELECT guichet_can_see('beneficiary', :person) OR guichet_can_see('dossier', :dossier) "
        "OR guichet_can_see('referral', :referral)",
        "False",
    ),
    "guichet_can_see_aid_request(uuid)": (
        "SELECT guichet_can_see_aid_request(:aid_request)",
        "False",
    ),
    "guichet_can_see_dossier(uuid)": ("SELECT guichet_can_see_dossier(:dossier)", "False"),
    "guichet_can_see_note(uuid)": ("SELECT guichet_can_see_note(:note)", "False"),
    "guichet_can_see_orientation(uuid)": ("SELECT guichet_can_see_orientation(:random)", "False"),
    "guichet_can_see_referral(uuid)": ("SELECT guichet_can_see_referral(:referral)", "False"),
    "guichet_care_team_of(uuid)": ("SELECT cardinality(guichet_care_team_of(:person))", "0"),
    "guichet_dossier_decider_joins(uuid, uuid, text)": (
        "SELECT guichet_dossier_decider_joins(:person, :departement, 'rsa')",
        "False",
    ),
    "guichet_holding(uuid, text, text)": (
        "SELECT count(*) FROM guichet_holding(:amiens, 'rsa', '80021')",
        "0",
    ),
    "guichet_is_attached(uuid)": ("SELECT guichet_is_attached(:person)", "False"),
    # staff, not people: whether a user belongs to an organisation (a référent's check)
    "guichet_is_member(uuid, uuid)": ("SELECT guichet_is_member(:amiens, :random)", "False"),
    # login limits: keyed hashes of the outsider's own attempt in, its own admission out;
    # no person, no organisation, and login_attempt itself stays unreadable
    "guichet_login_admit(bytea, bytea, integer, integer, integer, integer, integer)": (
        "SELECT retry_after FROM guichet_login_admit(sha256('corbie-account'::bytea), "
        "sha256('corbie-ip'::bytea), 5, 60, 20, 60, 30)",
        "0",
    ),
    "guichet_login_failed(bigint, bytea)": (
        "SELECT pg_typeof(guichet_login_failed(0, sha256('corbie-account'::bytea)))::text",
        "void",
    ),
    "guichet_login_succeeded(bytea)": (
        "SELECT pg_typeof(guichet_login_succeeded(sha256('corbie-account'::bytea)))::text",
        "void",
    ),
    "guichet_origin_grants(uuid, uuid)": (
        "SELECT guichet_origin_grants(:referral, :secours)",
        "False",
    ),
    # write-only (the caller's own change and its audience's deliveries): what the outsider
    # may read back of the scenario's changes is nothing
    "guichet_record_change(text, uuid, text, text, text, uuid[], timestamp with time zone)": (
        "SELECT count(*) FROM change_event WHERE resource_id = :person",
        "0",
    ),
    "merge_beneficiaries(uuid, uuid, timestamp with time zone)": (
        "SELECT count(*) FROM merge_beneficiaries(:person, :random, :now)",
        "refused",
    ),
    "person_access_log(uuid, bigint, integer)": (
        "SELECT count(*) FROM person_access_log(:person, NULL, 100)",
        "0",
    ),
    "person_followers(uuid[])": (
        "SELECT count(*) FROM person_followers(ARRAY[:person]::uuid[])",
        "0",
    ),
    "person_locator(uuid)": ("SELECT count(*) FROM person_locator(:person)", "0"),
    "person_merged_into(uuid)": ("SELECT person_merged_into(:person) IS NULL", "True"),
    "person_previews(text, date, text[])": (
        "SELECT count(*) FROM person_previews(NULL, :birth, :keys)",
        "0",
    ),
    "referral_system_transition(uuid, text, text, text, text, timestamp with time zone)": (
        "SELECT referral_system_transition(:referral, 'sent', 'cancelled', 'x', 'x', :now)",
        "False",
    ),
    "referrals_for_consent(uuid)": ("SELECT count(*) FROM referrals_for_consent(:consent)", "0"),
    # statistics: an agent without pilotage reads no statistical row and no total, even of
    # the département the scenario's people live in
    "guichet_stat_area_count(text, text, text, date, date)": (
        "SELECT guichet_stat_area_count('people', 'departement', '80', :year_start, :year_end)",
        "0",
    ),
}


async def test_every_definer_function_answers_an_outsider_nothing(
    client: httpx.AsyncClient,
    connection: AsyncConnection,
    world: World,
    as_persona: Headers,
    settings: Settings,
    database_url: URL,
) -> None:
    async with owner_connection(database_url) as conn:
        callable_ = {
            s for s, _, may_call in await definer_functions(conn, settings.app_role) if may_call
        }
    assert callable_ == set(OUTSIDER_CALLS), "a definer function without an outsider test"
    s = await _scenario(client, world, as_persona)
    await add_personas(world, database_url)
    await generous_rules(client, as_persona)
    aid = await _aid_scenario(client, as_persona)
    today = date.today()
    params = {
        "person": s["person"],
        "dossier": s["dossier"],
        "note": s["note"],
        "consent": s["consent"],
        "referral": s["referral"],
        "random": uuid.uuid4(),
        "amiens": world.organisations["ccas_amiens"],
        "departement": world.organisations["departement"],
        "secours": world.organisations["secours_populaire"],
        "agent": world.personas["ccas_rsa_agent"].principal_id,
        "today": today,
        "now": NOW,
        "aid_person": aid["aid_person"],
        "aid_request": aid["aid_request"],
        "year": today.year,
        "year_ago": today.replace(year=today.year - 1),
        "year_start": date(today.year, 1, 1),
        "year_end": date(today.year, 12, 31),
        "birth": date.fromisoformat(s["identity"]["birth_date"]),
    }
    # the true name keys of the person, read as its own CCAS
    own = await _as(connection, world, "ccas_amiens", "ccas_rsa_agent")
    params["keys"] = list(
        await own.scalar(
            text("SELECT match_keys::text[] FROM beneficiary WHERE id = :p"), {"p": s["person"]}
        )
        or []
    )
    assert params["keys"]
    # positive control: the CCAS d'Amiens itself is answered
    assert await own.scalar(text("SELECT guichet_can_see_dossier(:d)"), {"d": s["dossier"]})
    assert await own.scalar(
        text("SELECT count(*) FROM person_previews(NULL, :b, :k)"),
        {"b": params["birth"], "k": params["keys"]},
    )
    assert await own.scalar(
        text("SELECT guichet_can_see_aid_request(:r)"), {"r": aid["aid_request"]}
    )
    assert await own.scalar(
        text("SELECT count(*) FROM guichet_aid_history(:p, :o, :s)"),
        {"p": aid["aid_person"], "o": params["amiens"], "s": params["year_ago"]},
    )

    outsider = await _as(connection, world, "ccas_corbie", "ccas_agent")
    own_head = await outsider.scalar(
        text(
            "SELECT hash FROM audit_entry WHERE organisation_id = guichet_org() "
            "ORDER BY id DESC LIMIT 1"
        )
    )
    for signature, (sql, expected) in sorted(OUTSIDER_CALLS.items()):
        await outsider.execute(text("SAVEPOINT outsider"))
        try:
            got = await outsider.scalar(text(sql), params)
        except DBAPIError as error:
            await outsider.execute(text("ROLLBACK TO SAVEPOINT outsider"))
            assert expected == "refused", (signature, error)
            continue
        if expected == "own":
            assert got == own_head, signature
        elif expected == "public":
            assert got is not None, signature
        else:
            assert str(got) == expected, (signature, got)
        await outsider.execute(text("RELEASE SAVEPOINT outsider"))


# row-level security alone ----------------------------------------------------------------


async def _counts(connection: AsyncConnection, world: World, org_key: str) -> dict[str, int]:
    session = AsyncSession(bind=connection)
    await set_db_context(
        session, context=DbContext.REQUEST, organisation_id=world.organisations[org_key]
    )
    private = sorted(n for n in metadata.tables if scoping_of(n).requires_rls)
    return {
        table: int(await session.scalar(text(f"SELECT count(*) FROM {table}")) or 0)
        for table in private
    }


@pytest.mark.parametrize("outsider", ["ccas_corbie", "caf"])
async def test_rls_alone_hides_every_table_of_another_organisations_person(
    client: httpx.AsyncClient,
    connection: AsyncConnection,
    world: World,
    as_persona: Headers,
    outsider: str,
    database_url: URL,
) -> None:
    """No repository filter: a bare count of every private table (personal data, referrals,
    dossiers, consents, notes, access requests, aids, audit, feed, webhooks, statistical
    rows…) as an organisation with no business with the scenario does not move when the CCAS
    d'Amiens writes it all."""
    await add_personas(world, database_url)
    await generous_rules(client, as_persona)  # a public règlement, before the counts
    before = await _counts(connection, world, outsider)
    mine_before = await _counts(connection, world, "ccas_amiens")
    await _scenario(client, world, as_persona)
    await _aid_scenario(client, as_persona)
    assert await _counts(connection, world, outsider) == before
    mine_after = await _counts(connection, world, "ccas_amiens")
    grew = {t for t in mine_after if mine_after[t] > mine_before[t]}
    # the test can fail: the writer sees its own rows appear in each kind of table
    assert {
        "beneficiary",
        "care_team_membership",
        "household_member",
        "budget_line",
        "note",
        "consent",
        "referral",
        "referral_event",
        "referral_message",
        "orientation",
        "dossier",
        "access_request",
        "aid_request",
        "aid_request_event",
        "audit_entry",
    } <= grew, grew
