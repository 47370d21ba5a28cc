"""The access rule's SQL home (migration 0016) asked directly, against the test oracle
(``tests/oracle.py``): what a membership held by law grants, the NIR for the legal-aid
competences only, and the sensitive clearance as a request setting."""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from api.db.context import DbContext, set_db_context
from api.domain.catalogue import LEGAL_AID_PRESTATIONS, SEEDED_COMPETENCES, DataCategory
from tests.oracle import ALL_BUT_NIR
from tests.world import World


async def _holding(session: AsyncSession, org: object, competence: str) -> set[str] | None:
    row = (
        await session.execute(
            text("SELECT source, categories FROM guichet_holding(:o, :c, '80021')"),
            {"o": org, "c": competence},
        )
    ).first()
    return None if row is None else set(row.categories)


async def _follow(
    connection: AsyncConnection, organisation: object, commune: str, competence: str
) -> uuid.UUID:
    """A person of ``commune`` whom ``organisation`` follows for ``competence``."""
    person = uuid.uuid4()  # no RETURNING: the row is readable once the membership exists
    await connection.execute(
        text(
            "INSERT INTO beneficiary (id, birth_name, first_names, birth_date, sex, commune_code, "
            "match_keys, folded_names, created_by_organisation_id, created_at, updated_at, "
            "version) VALUES (:p, 'Lot', 'Anne', '1980-01-01', 'F', :commune, "
            "'{}', 'lot anne', :o, now(), now(), 1)"
        ),
        {"p": person, "o": organisation, "commune": commune},
    )
    await connection.execute(
        text(
            "INSERT INTO care_team_membership (id, beneficiary_id, organisation_id, competence, "
            "team_role, source, started_at) VALUES (gen_random_uuid(), :p, :o, :c, "
            "'referent', 'creation', now())"
        ),
        {"p": person, "o": organisation, "c": competence},
    )
    return person


async def test_law_grants_every_category_but_the_nir_except_for_legal_aid(
    connection: AsyncConnection, world: World
) -> None:
    departement = world.organisations["departement"]
    session = AsyncSession(bind=connection)
    await set_db_context(session, context=DbContext.REQUEST, organisation_id=departement)
    held_by_law = [c.code for c in SEEDED_COMPETENCES if "departement" in c.legal_holder_kinds]
    assert set(LEGAL_AID_PRESTATIONS) <= set(held_by_law)
    for code in held_by_law:
        granted = await _holding(session, departement, code)
        expected = {c.value for c in ALL_BUT_NIR}
        if code in LEGAL_AID_PRESTATIONS:
            expected.add(DataCategory.NIR.value)
        assert granted == expected, code
    # a competence the département does not hold there, and another organisation's holding
    assert await _holding(session, departement, "aide_facultative") is None
    assert await _holding(session, world.organisations["ccas_amiens"], "rsa") is None


async def test_the_clearance_is_what_opens_a_sensitive_membership(
    connection: AsyncConnection, world: World
) -> None:
    departement = world.organisations["departement"]
    session = AsyncSession(bind=connection)
    await set_db_context(session, context=DbContext.REQUEST, organisation_id=departement)
    person = await _follow(connection, departement, "80021", "ase")
    ask = text("SELECT guichet_person_categories(:p, NULL)")
    assert await session.scalar(ask, {"p": person}) == []
    await set_db_context(
        session, context=DbContext.REQUEST, organisation_id=departement, sensitive_clearance=True
    )
    assert set(await session.scalar(ask, {"p": person}) or []) == {c.value for c in ALL_BUT_NIR}


async def test_people_asked_together_get_what_each_gets_alone(
    connection: AsyncConnection, world: World
) -> None:
    # The rule asks how a competence is held once per (competence, commune) of the people
    # asked: the same competence on another commune, or another competence on the same
    # commune, must not borrow that answer.
    secours = world.organisations["secours_populaire"]
    session = AsyncSession(bind=connection)
    await set_db_context(session, context=DbContext.REQUEST, organisation_id=secours)
    delegated = await _follow(connection, secours, "80021", "aide_alimentaire")
    elsewhere = await _follow(connection, secours, "80001", "aide_alimentaire")
    other_competence = await _follow(connection, secours, "80021", "aide_facultative")
    delegated_too = await _follow(connection, secours, "80021", "aide_alimentaire")
    people = [delegated, elsewhere, other_competence, delegated_too]
    ask = text(
        "SELECT beneficiary_id, competence, holding, convention_id, categories "
        "FROM guichet_access(CAST(:people AS uuid[]), NULL)"
    )

    alone = {}
    for person in people:
        rows = (await session.execute(ask, {"people": [person]})).all()
        assert len(rows) == 1, rows
        alone[person] = tuple(rows[0])
    together = {r.beneficiary_id: tuple(r) for r in await session.execute(ask, {"people": people})}

    assert together == alone
    convention = world.conventions["CONV-AMIENS-SPF-2026"]
    assert alone[delegated][2:4] == ("convention", convention)
    assert alone[delegated_too] == (delegated_too, *alone[delegated][1:])
    assert alone[elsewhere][2:] == (None, None, [])
    assert alone[other_competence][2:] == (None, None, [])
