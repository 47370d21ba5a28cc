"""The database's own wall around staff governance (migration 0017), with no service in the
way: the runtime role, acting for one organisation or as the platform operator."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from api.db.context import DbContext, set_db_context
from tests.world import World

_ENROL = text("SELECT user_id, outcome FROM enrol_member(:org, :email, 'X', NULL, :roles, now())")
_INSERT = text(
    "INSERT INTO membership (id, user_id, organisation_id, roles, created_at, accepted_at) "
    "VALUES (gen_random_uuid(), :user, :org, :roles, now(), now())"
)


async def _act(connection: AsyncConnection, world: World, persona: str) -> None:
    p = world.personas[persona]
    context = DbContext.PLATFORM if persona == "platform_admin" else DbContext.REQUEST
    await set_db_context(
        AsyncSession(bind=connection),
        context=context,
        organisation_id=p.organisation_id,
        principal_id=p.principal_id,
    )


async def _refused(connection: AsyncConnection, statement: object, **params: object) -> None:
    with pytest.raises(DBAPIError, match=r"not allowed|row-level security"):
        async with connection.begin_nested():
            await connection.execute(statement, params)  # type: ignore[call-overload]


async def test_an_organisation_enrols_nobody_elsewhere(
    connection: AsyncConnection, world: World
) -> None:
    await _act(connection, world, "ccas_corbie_admin")
    amiens = world.organisations["ccas_amiens"]
    await _refused(connection, _ENROL, org=amiens, email="x@somme.demo", roles=["agent"])
    me = world.personas["ccas_corbie_admin"].principal_id
    await _refused(connection, _INSERT, user=me, org=amiens, roles=["agent"])
    # its own organisation: added, then already a member
    corbie = world.organisations["ccas_corbie"]
    added = (
        await connection.execute(_ENROL, {"org": corbie, "email": "n@somme.demo", "roles": []})
    ).one()
    assert added.outcome == "added"
    again = (
        await connection.execute(_ENROL, {"org": corbie, "email": "N@somme.demo", "roles": []})
    ).one()
    assert (again.user_id, again.outcome) == (added.user_id, "already_member")


async def test_the_platform_operator_enrols_first_admins_only(
    connection: AsyncConnection, world: World
) -> None:
    await _act(connection, world, "platform_admin")
    departement = world.organisations["departement"]
    agent = world.personas["departement_agent"].principal_id
    for roles in (["agent", "sensitive", "dpo"], ["admin"]):  # the département has an admin
        await _refused(connection, _ENROL, org=departement, email="y@somme.demo", roles=roles)
    await _refused(connection, _INSERT, user=agent, org=departement, roles=["dpo"])
    camon = uuid.uuid4()
    await connection.execute(
        text(
            "INSERT INTO organisation (id, name, search_name, kind, commune_code, "
            "service_area_communes, service_area_departements, retention_months, version, "
            "created_at, updated_at) VALUES (:id, 'CCAS de Camon', 'ccas de camon', 'ccas', "
            "'80164', '{}', '{}', 24, 1, now(), now())"
        ),
        {"id": camon},
    )
    await _refused(connection, _ENROL, org=camon, email="z@camon.demo", roles=["admin", "dpo"])
    first = (
        await connection.execute(
            _ENROL, {"org": camon, "email": "z@camon.demo", "roles": ["admin"]}
        )
    ).one()
    assert first.outcome == "added"


async def test_someone_working_elsewhere_is_only_invited(
    connection: AsyncConnection, world: World
) -> None:
    await _act(connection, world, "ccas_corbie_admin")
    corbie = world.organisations["ccas_corbie"]
    invited = (
        await connection.execute(
            _ENROL, {"org": corbie, "email": "agent.cd80@somme.demo", "roles": ["agent"]}
        )
    ).one()
    assert invited.outcome == "invited"
    assert invited.user_id == world.personas["departement_agent"].principal_id
    accepted = await connection.scalar(
        text("SELECT accepted_at FROM membership WHERE organisation_id = :o AND user_id = :u"),
        {"o": corbie, "u": invited.user_id},
    )
    assert accepted is None


async def test_role_grants_stay_in_their_organisation(
    connection: AsyncConnection, world: World
) -> None:
    await _act(connection, world, "org_admin")
    amiens = world.organisations["ccas_amiens"]
    grant = uuid.uuid4()
    await connection.execute(
        text(
            "INSERT INTO role_grant (id, organisation_id, user_id, roles, status, requested_by, "
            "requested_at) VALUES (:id, :o, :u, '{dpo}', 'pending', :by, now())"
        ),
        {
            "id": grant,
            "o": amiens,
            "u": world.personas["ccas_rsa_agent"].principal_id,
            "by": world.personas["org_admin"].principal_id,
        },
    )
    # the demo's grants of the CCAS d'Amiens (its dpo) are there too: count this one
    count = text("SELECT count(*) FROM role_grant WHERE id = :id").bindparams(id=grant)
    assert await connection.scalar(count) == 1
    await _act(connection, world, "ccas_corbie_admin")
    assert await connection.scalar(count) == 0
    await _refused(
        connection,
        text(
            "INSERT INTO role_grant (id, organisation_id, user_id, roles, status, requested_by, "
            "requested_at) VALUES (gen_random_uuid(), :o, :u, '{dpo}', 'pending', :u, now())"
        ),
        o=amiens,
        u=world.personas["ccas_corbie_admin"].principal_id,
    )
    await _act(connection, world, "platform_admin")  # it approves for single-admin ones
    assert await connection.scalar(count) == 1


async def test_the_database_refuses_a_change_of_ones_own_roles(
    connection: AsyncConnection, world: World
) -> None:
    await _act(connection, world, "org_admin")
    me = world.personas["org_admin"].principal_id
    own = text("UPDATE membership SET roles = '{admin,dpo}' WHERE user_id = :u")
    with pytest.raises(DBAPIError, match="nobody changes their own roles"):
        async with connection.begin_nested():
            await connection.execute(own, {"u": me})
    # another member's roles, and one's own acceptance, remain possible
    agent = world.personas["ccas_rsa_agent"].principal_id
    other = text("UPDATE membership SET roles = '{decideur}' WHERE user_id = :u RETURNING id")
    assert (await connection.execute(other, {"u": agent})).first() is not None
    accept = text("UPDATE membership SET accepted_at = now() WHERE user_id = :u RETURNING id")
    assert (await connection.execute(accept, {"u": me})).first() is not None
