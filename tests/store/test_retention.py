"""The retention purge: detaches organisations whose retention has passed, warns 30 days
ahead, anonymises people nobody follows any more, deletes old audit entries while the
chains stay verifiable; idempotent, and two purges at once do not double-apply.

Each test works on organisations and people of its own, committed as the owner, with
instants far enough in the past that nothing else in the database is due."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from api.auth.scope import PrincipalKind, Scope
from api.db.context import DbContext, set_db_context
from api.db.engine import create_engine, owner_connection
from api.domain import clock
from api.domain.audit.repository import AuditLog
from api.domain.people.rules import PurgeReport
from api.jobs import purge as purge_job
from api.jobs.audit_chain import verify_chains
from api.jobs.purge import purge
from tests.conftest import ROOT

DAY = timedelta(days=1)
MONTH = timedelta(days=30.5)


async def _organisation(
    conn: AsyncConnection, *, retention: int = 24, audit_retention: int = 12
) -> uuid.UUID:
    org = uuid.uuid4()
    now = clock.now()
    await conn.execute(
        text(
            "INSERT INTO organisation (id, name, search_name, kind, service_area_communes, "
            "service_area_departements, retention_months, audit_retention_months, version, "
            "created_at, updated_at) VALUES (:id, :n, :n, 'association', '{}', '{}', :r, :a, "
            "1, :t, :t)"
        ),
        {"id": org, "n": f"retention {org}", "r": retention, "a": audit_retention, "t": now},
    )
    return org


async def _person(
    conn: AsyncConnection,
    follow: dict[uuid.UUID, datetime | None],
    *,
    last_contact: datetime,
    ended: timedelta | None = None,
) -> uuid.UUID:
    """A person with a full file, followed by each organisation of ``follow`` (membership
    started then; ended ``ended`` ago when given)."""
    person = uuid.uuid4()
    creator = next(iter(follow))
    now = clock.now()
    await conn.execute(
        text(
            "INSERT INTO beneficiary (id, birth_name, first_names, birth_date, sex, nir_cipher, "
            "nir_hash, commune_code, address, phone, email, situation, match_keys, "
            "folded_names, last_contact_at, created_by_organisation_id, version, created_at, "
            "updated_at) VALUES (:id, 'Durand', 'Léon', '1950-07-14', 'M', '\\x0102', 'h', "
            "'80021', '{\"line1\": \"1 rue\"}', '0600000000', 'l@d.fr', "
            "'{\"housing\": \"locataire\"}', '{durand}', 'durand leon', :c, :o, 1, :c, :c)"
        ),
        {"id": person, "c": last_contact, "o": creator},
    )
    for org, started in follow.items():
        await conn.execute(
            text(
                "INSERT INTO care_team_membership (id, beneficiary_id, organisation_id, "
                "competence, team_role, source, justification, started_at, ended_at, "
                "end_reason) VALUES (:id, :p, :o, 'aide_alimentaire', 'referent', 'creation', "
                "'texte libre', :s, :e, :r)"
            ),
            {
                "id": uuid.uuid4(),
                "p": person,
                "o": org,
                "s": started or last_contact,
                "e": now - ended if ended else None,
                "r": "fin de suivi" if ended else None,
            },
        )
    await conn.execute(
        text(
            "INSERT INTO note (id, beneficiary_id, organisation_id, competence, visibility, "
            "body, created_at) VALUES (:id, :p, :o, 'aide_alimentaire', 'team', 'note', :t)"
        ),
        {"id": uuid.uuid4(), "p": person, "o": creator, "t": last_contact},
    )
    await conn.execute(
        text(
            "INSERT INTO budget_line (id, beneficiary_id, kind, type, monthly_amount) "
            "VALUES (:id, :p, 'resource', 'salaire', 1200)"
        ),
        {"id": uuid.uuid4(), "p": person},
    )
    await conn.execute(
        text(
            "INSERT INTO household_member (id, beneficiary_id, first_name, birth_date, "
            "relation) VALUES (:id, :p, 'Zoé', '2011-03-09', 'enfant')"
        ),
        {"id": uuid.uuid4(), "p": person},
    )
    await conn.execute(
        text(
            "INSERT INTO consent (id, beneficiary_id, kind, competence, purpose, method, "
            "given_on, recorded_by_organisation_id, created_at) VALUES (:id, :p, 'consent', "
            "'aide_alimentaire', 'partage avec l''épicerie', 'oral', '2020-01-01', :o, :t)"
        ),
        {"id": uuid.uuid4(), "p": person, "o": creator, "t": last_contact},
    )
    return person


async def _state(conn: AsyncConnection, person: uuid.UUID) -> dict[str, Any]:
    row = (await conn.execute(text("SELECT * FROM beneficiary WHERE id = :p"), {"p": person})).one()
    count = {}
    for table in ("note", "budget_line"):
        count[table] = await conn.scalar(
            text(f"SELECT count(*) FROM {table} WHERE beneficiary_id = :p"), {"p": person}
        )
    return {
        "row": row,
        "memberships": (
            await conn.execute(
                text(
                    "SELECT organisation_id, ended_at, end_reason, justification "
                    "FROM care_team_membership WHERE beneficiary_id = :p"
                ),
                {"p": person},
            )
        ).all(),
        "household": (
            await conn.execute(
                text(
                    "SELECT first_name, birth_date FROM household_member WHERE beneficiary_id = :p"
                ),
                {"p": person},
            )
        ).all(),
        "consent_purposes": list(
            (
                await conn.execute(
                    text("SELECT purpose FROM consent WHERE beneficiary_id = :p"), {"p": person}
                )
            ).scalars()
        ),
        **count,
    }


def _counts(report: PurgeReport, org: uuid.UUID) -> tuple[int, int, int]:
    for o in report.organisations:
        if o.organisation_id == org:
            return (o.detached, o.due_within_30_days, o.audit_entries_deleted)
    return (0, 0, 0)


async def test_purge_detaches_warns_and_anonymises_then_changes_nothing(
    database_url: URL,
) -> None:
    now = clock.now()
    async with owner_connection(database_url) as conn:
        a = await _organisation(conn)
        b = await _organisation(conn, retention=6)
        expired = await _person(conn, {a: None}, last_contact=now - 37 * MONTH)
        due = await _person(conn, {a: None}, last_contact=now - 24 * MONTH + 10 * DAY)
        recent = await _person(conn, {a: None}, last_contact=now - 2 * DAY)
        left_long_ago = await _person(conn, {a: None}, last_contact=now - 50 * DAY, ended=40 * DAY)
        left_lately = await _person(conn, {a: None}, last_contact=now - DAY, ended=10 * DAY)
        shared = await _person(conn, {a: None, b: None}, last_contact=now - 8 * MONTH)

    report = await purge(database_url, now=now)

    assert _counts(report, a) == (1, 1, 0)
    assert _counts(report, b) == (1, 0, 0)
    assert "Durand" not in str(report.as_dict())
    async with owner_connection(database_url) as conn:
        gone = await _state(conn, expired)
        assert [(m.end_reason, m.justification) for m in gone["memberships"]] == [
            ("retention", None)
        ]
        row = gone["row"]
        assert row.anonymised_at is not None
        assert (row.birth_name, row.first_names, row.usage_name) == ("", "", None)
        assert (row.nir_cipher, row.nir_hash, row.phone, row.email) == (None, None, None, None)
        assert (row.address, row.situation, row.match_keys) == (None, None, [])
        # kept: the id, the birth year, the commune
        assert row.birth_date == date(1950, 1, 1) and row.commune_code == "80021"
        assert gone["note"] == 0 and gone["budget_line"] == 0
        assert gone["household"] == [(None, date(2011, 1, 1))]
        assert gone["consent_purposes"] == [""]

        for kept in (due, recent, left_lately):
            state = await _state(conn, kept)
            assert state["row"].anonymised_at is None and state["row"].birth_name == "Durand"
            assert state["note"] == 1
        assert (await _state(conn, due))["memberships"][0].ended_at is None
        assert (await _state(conn, left_long_ago))["row"].anonymised_at is not None
        both = await _state(conn, shared)
        assert {(m.organisation_id, m.end_reason) for m in both["memberships"]} == {
            (a, None),
            (b, "retention"),
        }
        assert both["row"].anonymised_at is None
        # each detachment is in the organisation's audit trail, and the chains hold
        logged = (
            await conn.execute(
                text(
                    "SELECT organisation_id, beneficiary_id FROM audit_entry "
                    "WHERE action = 'care_team.retention_end' AND organisation_id IN (:a, :b)"
                ),
                {"a": a, "b": b},
            )
        ).all()
        assert sorted(logged) == sorted([(a, expired), (b, shared)])
        assert await verify_chains(conn) == []
        before = {p: (await _state(conn, p))["row"].version for p in (expired, shared, due)}

    again = await purge(database_url, now=now)
    assert (again.detached, again.anonymised, again.audit_entries_deleted) == (0, 0, 0)
    assert _counts(again, a) == (0, 1, 0)
    async with owner_connection(database_url) as conn:
        after = {p: (await _state(conn, p))["row"].version for p in (expired, shared, due)}
        assert after == before


def _scope(organisation: uuid.UUID) -> Scope:
    return Scope(
        principal_kind=PrincipalKind.USER,
        principal_id=uuid.uuid4(),
        organisation_id=organisation,
        organisation_kind="association",
        roles=frozenset({"agent"}),
        client_scopes=frozenset(),
        actions=frozenset(),
        categories=frozenset(),
        territory=frozenset(),
        law_competences=frozenset(),
        request_id="test-retention",
    )


async def _write(
    engine: AsyncEngine,
    organisation: uuid.UUID,
    count: int,
    monkeypatch: pytest.MonkeyPatch,
    at: datetime | None = None,
) -> None:
    if at is not None:
        monkeypatch.setattr(clock, "now", lambda: at)
    try:
        async with AsyncSession(engine) as session, session.begin():
            await set_db_context(session, context=DbContext.REQUEST, organisation_id=organisation)
            log = AuditLog(session, _scope(organisation))
            for n in range(count):
                await log.record("beneficiary.read", "beneficiary", str(n))
    finally:
        monkeypatch.undo()


async def _ids(conn: AsyncConnection, organisation: uuid.UUID) -> list[int]:
    rows = await conn.execute(
        text("SELECT id FROM audit_entry WHERE organisation_id = :o ORDER BY id"),
        {"o": organisation},
    )
    return list(rows.scalars())


async def test_old_audit_entries_go_and_the_chains_still_verify(
    database_url: URL, app_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = clock.now()
    async with owner_connection(database_url) as conn:
        partly = await _organisation(conn)
        wholly = await _organisation(conn, audit_retention=6)
    await _write(app_engine, partly, 5, monkeypatch, at=now - 14 * MONTH)
    await _write(app_engine, partly, 3, monkeypatch)
    await _write(app_engine, wholly, 4, monkeypatch, at=now - 7 * MONTH)
    async with owner_connection(database_url) as conn:
        kept = (await _ids(conn, partly))[5:]

    report = await purge(database_url, now=now)
    assert _counts(report, partly)[2] == 5
    assert _counts(report, wholly)[2] == 4
    async with owner_connection(database_url) as conn:
        assert await _ids(conn, partly) == kept
        assert await _ids(conn, wholly) == []
        assert await verify_chains(conn) == []
    # writing goes on from the anchor, even for a chain left empty
    await _write(app_engine, wholly, 2, monkeypatch)
    await _write(app_engine, partly, 1, monkeypatch)
    again = await purge(database_url, now=now)
    assert _counts(again, partly)[2] == 0 and _counts(again, wholly)[2] == 0

    engine = create_engine(database_url, pool_size=1, max_overflow=0)
    try:
        async with engine.connect() as conn:
            assert await verify_chains(conn) == []
            remaining = await _ids(conn, partly)
            await conn.rollback()
            # a modified remaining entry is still detected (changes rolled back) …
            await conn.execute(
                text("UPDATE audit_entry SET purpose = 'curiosité' WHERE id = :i"),
                {"i": remaining[1]},
            )
            assert await verify_chains(conn) == [(partly, remaining[1])]
            await conn.rollback()
            # … and so is the removal of the oldest entry kept
            await conn.execute(text("DELETE FROM audit_entry WHERE id = :i"), {"i": remaining[0]})
            assert await verify_chains(conn) == [(partly, remaining[1])]
            await conn.rollback()
    finally:
        await engine.dispose()


async def test_two_purges_at_once_do_not_double_apply(
    database_url: URL, app_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = clock.now()
    async with owner_connection(database_url) as conn:
        org = await _organisation(conn)
        people = [await _person(conn, {org: None}, last_contact=now - 30 * MONTH) for _ in range(5)]
    await _write(app_engine, org, 3, monkeypatch, at=now - 13 * MONTH)
    await _write(app_engine, org, 1, monkeypatch)

    async with asyncio.timeout(60):
        first, second = await asyncio.gather(
            purge(database_url, now=now), purge(database_url, now=now)
        )
    assert sorted([_counts(first, org)[0], _counts(second, org)[0]]) == [0, 5]
    assert first.anonymised + second.anonymised >= 5
    assert 0 in (first.anonymised, second.anonymised)
    # the pruned entries: counted once; the detachments: written once
    assert sorted([_counts(first, org)[2], _counts(second, org)[2]]) == [0, 3]
    async with owner_connection(database_url) as conn:
        logged = await conn.scalar(
            text(
                "SELECT count(*) FROM audit_entry WHERE organisation_id = :o "
                "AND action = 'care_team.retention_end'"
            ),
            {"o": org},
        )
        assert logged == 5
        ended = await conn.scalar(
            text(
                "SELECT count(*) FROM care_team_membership WHERE organisation_id = :o "
                "AND end_reason = 'retention'"
            ),
            {"o": org},
        )
        assert ended == 5
        for p in people:
            assert (await _state(conn, p))["row"].version == 2
        assert await verify_chains(conn) == []


def test_the_purge_command_prints_ids_and_counts(database_url: URL) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GUICHET_")}
    env["DATABASE_URL"] = database_url.render_as_string(hide_password=False)
    done = subprocess.run(
        [sys.executable, "-m", "api.cli", "purge"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert set(report) == {
        "ran_at",
        "detached",
        "anonymised",
        "audit_entries_deleted",
        "organisations",
    }
    for organisation in report["organisations"]:
        assert set(organisation) == {
            "organisation_id",
            "detached",
            "due_within_30_days",
            "audit_entries_deleted",
        }


async def test_capabilities_keep_the_people_they_need_and_clear_their_own_text(
    database_url: URL, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = clock.now()
    async with owner_connection(database_url) as conn:
        org = await _organisation(conn)
        needed, released = [
            await _person(conn, {org: None}, last_contact=now - 30 * MONTH) for _ in range(2)
        ]
    cleared: list[uuid.UUID] = []

    async def open_referrals(
        conn: AsyncConnection, ids: Sequence[uuid.UUID], at: datetime
    ) -> set[uuid.UUID]:
        return {needed} & set(ids)

    async def referral_texts(conn: AsyncConnection, ids: Sequence[uuid.UUID], at: datetime) -> None:
        cleared.extend(ids)

    monkeypatch.setattr(purge_job, "KEEPERS", [open_referrals])
    monkeypatch.setattr(purge_job, "ANONYMISERS", [referral_texts])
    await purge(database_url, now=now)
    assert released in cleared and needed not in cleared
    async with owner_connection(database_url) as conn:
        assert (await _state(conn, needed))["row"].anonymised_at is None
        assert (await _state(conn, released))["row"].anonymised_at is not None
