"""Statistical rows by the database alone: ``stat_fact`` holds one row per counted record (and
a person's id until the purge), so the runtime role reads its rows only as a statistics
reader, within its organisation's territory, and never the columns naming the record; the
comparison total only for an area that contains part of that territory. Who is a statistics
reader is the permission table's answer, which the scope builder leaves in the transaction
(``guichet.statistics``): the sessions here are opened through it, as a request's is."""

from __future__ import annotations

import uuid
from datetime import date

import httpx
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from api.auth.builder import build_scope
from api.auth.tokens import AccessClaims, PrincipalKind
from api.db.context import DbContext, set_db_context
from api.db.engine import owner_connection
from tests.api.people_support import Headers, create
from tests.api.test_dossiers import rsa_person
from tests.world import World

CORBIE = "80212"
VAL_DE_SOMME = "248000499"  # Corbie's EPCI
AMIENS_METROPOLE = "248000531"  # Amiens's EPCI

_ROWS = "SELECT count(*) FROM stat_fact WHERE measure = 'people'"


async def _user_id(database_url: URL, email: str) -> uuid.UUID:
    async with owner_connection(database_url) as conn:
        found = await conn.scalar(text("SELECT id FROM app_user WHERE email = :e"), {"e": email})
    assert found is not None
    return uuid.UUID(str(found))


async def _as(
    connection: AsyncConnection,
    organisation: uuid.UUID,
    principal: uuid.UUID | None,
    kind: PrincipalKind = "user",
) -> AsyncSession:
    """A session whose transaction identity is set as a request's: by the scope builder for a
    principal, bare for an organisation alone."""
    session = AsyncSession(bind=connection)
    if principal is None:
        await set_db_context(session, context=DbContext.REQUEST, organisation_id=organisation)
        return session
    claims = AccessClaims(
        sub=str(principal),
        kind=kind,
        org=organisation,
        roles=(),
        scopes=(),
        jti="test",
        iat=0,
        nbf=0,
        exp=0,
        iss="test",
        aud="test",
    )
    await build_scope(session, claims)
    return session


async def _count(session: AsyncSession, sql: str, **params: object) -> int:
    return int(await session.scalar(text(sql), params) or 0)


async def _area(session: AsyncSession, kind: str, code: str) -> int:
    year = date.today().year
    return await _count(
        session,
        "SELECT guichet_stat_area_count('people', :k, :c, :f, :l)",
        k=kind,
        c=code,
        f=date(year, 1, 1),
        l=date(year, 12, 31),
    )


async def test_only_statistics_readers_read_rows_and_only_of_their_territory(
    client: httpx.AsyncClient,
    connection: AsyncConnection,
    world: World,
    as_persona: Headers,
    database_url: URL,
) -> None:
    departement = world.organisations["departement"]
    amiens = world.organisations["ccas_amiens"]
    readers: dict[str, tuple[uuid.UUID, uuid.UUID | None, PrincipalKind]] = {
        "departement pilotage": (departement, world.personas["pilotage"].principal_id, "user"),
        "departement stats:read client": (
            departement,
            world.personas["client_without_scopes"].principal_id,
            "client",
        ),
        "amiens pilotage": (
            amiens,
            await _user_id(database_url, "pilotage.ccas-amiens@somme.demo"),
            "user",
        ),
    }
    others: dict[str, tuple[uuid.UUID, uuid.UUID | None, PrincipalKind]] = {
        # the CAF's territory covers Amiens: a territory is not a reason to read rows
        "caf, no principal": (world.organisations["caf"], None, "user"),
        "departement agent": (
            departement,
            world.personas["departement_agent"].principal_id,
            "user",
        ),
        "amiens agent": (amiens, world.personas["ccas_rsa_agent"].principal_id, "user"),
    }
    everyone = {**readers, **others}
    before = {}
    for name, (org, principal, kind) in everyone.items():
        session = await _as(connection, org, principal, kind)
        before[name] = await _count(session, _ROWS)

    await rsa_person(client, as_persona)  # Amiens
    await create(client, as_persona("ccas_agent"), birth_name="Statlecteur", commune=CORBIE)

    grew = {}
    for name, (org, principal, kind) in everyone.items():
        session = await _as(connection, org, principal, kind)
        grew[name] = await _count(session, _ROWS) - before[name]
    assert grew == {
        "departement pilotage": 2,
        "departement stats:read client": 2,
        "amiens pilotage": 1,  # Amiens only, not Corbie's person
        "caf, no principal": 0,
        "departement agent": 0,
        "amiens agent": 0,
    }

    # the policy reads the scope's answer, not the membership: a pilotage member's identity
    # without it reads nothing, and the answer alone counts only in a request context
    pilotage = world.personas["pilotage"].principal_id
    bare = AsyncSession(bind=connection)
    await set_db_context(
        bare, context=DbContext.REQUEST, organisation_id=departement, principal_id=pilotage
    )
    assert await _count(bare, _ROWS) == 0
    await set_db_context(
        bare,
        context=DbContext.AUTH,
        organisation_id=departement,
        principal_id=pilotage,
        statistics_reader=True,
    )
    assert await _count(bare, _ROWS) == 0

    # the rows never give the records' ids, not even to a reader
    session = await _as(connection, *readers["departement pilotage"])
    for column in ("id", "source_id"):
        await session.execute(text("SAVEPOINT ids"))
        try:
            await session.execute(text(f"SELECT {column} FROM stat_fact LIMIT 1"))
        except DBAPIError:
            await session.execute(text("ROLLBACK TO SAVEPOINT ids"))
        else:
            raise AssertionError(f"the runtime role read stat_fact.{column}")


async def test_the_comparison_total_is_for_readers_and_areas_around_their_territory(
    client: httpx.AsyncClient,
    connection: AsyncConnection,
    world: World,
    as_persona: Headers,
    database_url: URL,
) -> None:
    await create(client, as_persona("ccas_agent"), birth_name="Statcomparaison", commune=CORBIE)
    amiens = world.organisations["ccas_amiens"]
    reader = await _as(
        connection, amiens, await _user_id(database_url, "pilotage.ccas-amiens@somme.demo")
    )
    # its own EPCI and département: the report's comparison lines
    assert await _area(reader, "departement", "80") >= 1
    await _area(reader, "epci", AMIENS_METROPOLE)
    # a neighbouring EPCI it has no commune in: nothing, though Corbie's person is there
    assert await _area(reader, "epci", VAL_DE_SOMME) == 0
    departement = await _as(
        connection, world.organisations["departement"], world.personas["pilotage"].principal_id
    )
    assert await _area(departement, "epci", VAL_DE_SOMME) >= 1
    # an agent without pilotage: no total at all
    agent = await _as(connection, amiens, world.personas["ccas_rsa_agent"].principal_id)
    assert await _area(agent, "departement", "80") == 0


async def test_the_runtime_role_may_not_write_statistical_rows(
    connection: AsyncConnection, world: World
) -> None:
    session = await _as(connection, world.organisations["departement"], None)
    await session.execute(text("SAVEPOINT write"))
    try:
        await session.execute(
            text(
                "INSERT INTO stat_fact (measure, month, commune_code, refreshed_at) "
                "VALUES ('people', date '2026-01-01', '80021', now())"
            )
        )
    except DBAPIError:
        await session.execute(text("ROLLBACK TO SAVEPOINT write"))
    else:
        raise AssertionError("the runtime role wrote a statistical row")
