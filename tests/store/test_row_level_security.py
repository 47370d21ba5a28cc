"""Row-level security as the second wall: every private table has it forced, and with no
repository filter at all the runtime role still sees only the acting organisation's rows."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import httpx
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

import api.db.tables  # noqa: F401
from api.db.base import metadata, scoping_of
from api.db.context import DbContext, set_db_context
from api.demo.territory import ORGANISATIONS
from tests.world import World

Headers = Callable[[str], dict[str, str]]


async def test_every_private_table_has_forced_rls(connection: AsyncConnection) -> None:
    rows = (
        await connection.execute(
            text(
                "SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class "
                "WHERE relnamespace = 'public'::regnamespace AND relkind = 'r'"
            )
        )
    ).all()
    flags = {r.relname: (r.relrowsecurity, r.relforcerowsecurity) for r in rows}
    private = [name for name in metadata.tables if scoping_of(name).requires_rls]
    assert private, "no private table declared"
    without = [name for name in private if flags.get(name) != (True, True)]
    assert without == []


async def _visible(connection: AsyncConnection, org: uuid.UUID | None, table: str) -> int:
    session = AsyncSession(bind=connection)
    await set_db_context(session, context=DbContext.REQUEST, organisation_id=org)
    count = await session.scalar(text(f"SELECT count(*) FROM {table}"))
    return int(count or 0)


async def test_rls_alone_hides_other_organisations_rows(
    connection: AsyncConnection, world: World
) -> None:
    cias = world.organisations["cias"]
    corbie = world.organisations["ccas_corbie"]
    # the CIAS is a party to one demo convention; the CCAS de Corbie to none
    assert await _visible(connection, cias, "convention") == 1
    assert await _visible(connection, corbie, "convention") == 0
    assert await _visible(connection, None, "convention") == 0
    # members of its own organisation only
    corbie_members = next(o for o in ORGANISATIONS if o.key == "ccas_corbie").members
    assert await _visible(connection, corbie, "membership") == len(corbie_members)
    assert await _visible(connection, corbie, "api_client") == 0
    assert await _visible(connection, corbie, "refresh_token") == 0


async def test_rls_alone_hides_people_of_other_organisations(
    connection: AsyncConnection, world: World, client: httpx.AsyncClient, as_persona: Headers
) -> None:
    """No repository filter at all: a bare SELECT on the person tables as the runtime role."""
    created = await client.post(
        "/v1/beneficiaries",
        json={
            "competence": "aide_facultative",
            "birth_name": "Mur",
            "first_names": "Second",
            "birth_date": "1970-07-07",
            "sex": "F",
            "commune": "80021",
        },
        headers=as_persona("ccas_rsa_agent"),
    )
    assert created.status_code == 201
    person = created.json()["id"]
    ccas, others = world.organisations["ccas_amiens"], ("departement", "cias", "secours_populaire")

    async def visible_rows(org: uuid.UUID, table: str, column: str) -> int:
        session = AsyncSession(bind=connection)
        await set_db_context(session, context=DbContext.REQUEST, organisation_id=org)
        sql = f"SELECT count(*) FROM {table} WHERE {column} = :p"
        return int(await session.scalar(text(sql), {"p": person}) or 0)

    assert await visible_rows(ccas, "beneficiary", "id") == 1
    for key in others:
        org = world.organisations[key]
        assert await visible_rows(org, "beneficiary", "id") == 0, key
        assert await visible_rows(org, "care_team_membership", "beneficiary_id") == 0, key
        # its audit entries stay with their organisation
        assert await visible_rows(org, "audit_entry", "beneficiary_id") == 0, key


async def test_rls_alone_refuses_moving_a_dossier_onto_what_the_caller_does_not_follow(
    connection: AsyncConnection, world: World, client: httpx.AsyncClient, as_persona: Headers
) -> None:
    """No repository at all: the runtime role updates a dossier it sees. The new row is judged
    on its own person and prestation, not on the dossier as it was."""
    agent = as_persona("ccas_rsa_agent")

    async def person(competence: str, name: str, birth_date: str) -> str:
        r = await client.post(
            "/v1/beneficiaries",
            json={
                "competence": competence,
                "birth_name": name,
                "first_names": "Dossier",
                "birth_date": birth_date,
                "sex": "F",
                "commune": "80021",
            },
            headers=agent,
        )
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    followed_for_rsa = await person("rsa", "Rempart", "1971-08-08")
    followed_for_aids = await person("aide_facultative", "Douve", "1983-02-14")
    opened = await client.post(
        "/v1/dossiers",
        json={"beneficiary_id": followed_for_rsa, "prestation": "rsa"},
        headers=agent,
    )
    assert opened.status_code == 201, opened.text
    dossier = opened.json()["id"]
    session = AsyncSession(bind=connection)
    await set_db_context(
        session, context=DbContext.REQUEST, organisation_id=world.organisations["ccas_amiens"]
    )

    async def update(assignment: str, **values: str) -> int | None:
        sql = f"UPDATE dossier SET {assignment} WHERE id = :d"
        async with connection.begin_nested() as attempt:
            try:
                result = await session.execute(text(sql), {"d": dossier, **values})
            except DBAPIError as error:
                await attempt.rollback()
                assert "row-level security" in str(error.orig)
                return None
            return int(result.rowcount)  # type: ignore[attr-defined]

    # the CCAS follows the second person, but not for rsa; and the first, but not for apa
    assert await update("beneficiary_id = :p", p=followed_for_aids) is None
    assert await update("prestation = 'apa'") is None
    # what it may do, it still does
    assert await update("version = version + 1") == 1
