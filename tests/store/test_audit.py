"""The audit trail: append-only for the runtime role, one hash chain per organisation that
survives concurrent writers and betrays any entry changed or removed in the middle."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import date, timedelta
from itertools import pairwise

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from api.auth.permissions import Action
from api.auth.scope import PrincipalKind, Scope
from api.db.context import DbContext, set_db_context
from api.db.engine import create_engine, owner_connection
from api.domain import clock
from api.domain.audit import service
from api.domain.audit.repository import AuditLog
from api.jobs.audit_chain import GENESIS, chain_pending, entry_hash, verify_chains
from api.problems import Forbidden, ValidationFailed
from tests.world import World

Tampered = Callable[[], AbstractAsyncContextManager[AsyncConnection]]


def _scope(
    world: World,
    persona: str,
    *,
    request_id: str = "test-request",
    actions: frozenset[Action] = frozenset(),
) -> Scope:
    p = world.personas[persona]
    assert p.principal_id is not None and p.organisation_id is not None
    return Scope(
        principal_kind=PrincipalKind(p.kind),
        principal_id=p.principal_id,
        organisation_id=p.organisation_id,
        organisation_kind="ccas",
        roles=frozenset(p.roles),
        client_scopes=frozenset(p.scopes),
        actions=actions,
        categories=frozenset(),
        territory=frozenset(),
        law_competences=frozenset(),
        acting_agent="Agent 42" if p.kind == "client" else None,
        request_id=request_id,
    )


async def _session_for(bind: AsyncConnection, scope: Scope) -> AsyncSession:
    session = AsyncSession(bind=bind)
    await set_db_context(session, context=DbContext.REQUEST, organisation_id=scope.organisation_id)
    return session


@pytest.fixture
async def marker(database_url: URL) -> AsyncIterator[str]:
    """A request id tagging the entries a test commits; they are deleted afterwards (the
    newest entries of their chains, so the chains stay valid for the next tests)."""
    value = f"test-audit-{uuid.uuid4()}"
    yield value
    async with owner_connection(database_url) as owner:
        await owner.execute(text("DELETE FROM audit_entry WHERE request_id = :m"), {"m": value})


@pytest.fixture
def tampered(database_url: URL) -> Tampered:
    """An owner connection whose changes are rolled back, to tamper without consequences;
    the entries committed so far are chained in it, as the worker would chain them."""

    @asynccontextmanager
    async def connect() -> AsyncIterator[AsyncConnection]:
        engine = create_engine(database_url, pool_size=1, max_overflow=0)
        try:
            async with engine.connect() as conn:
                transaction = await conn.begin()
                try:
                    await chain_pending(conn)
                    yield conn
                finally:
                    await transaction.rollback()
        finally:
            await engine.dispose()

    return connect


async def _ids(conn: AsyncConnection, marker: str, organisation_id: uuid.UUID) -> list[int]:
    rows = await conn.execute(
        text(
            "SELECT id FROM audit_entry WHERE request_id = :m AND organisation_id = :o ORDER BY id"
        ),
        {"m": marker, "o": organisation_id},
    )
    return list(rows.scalars())


@pytest.fixture
async def two_chains(app_engine: AsyncEngine, world: World, marker: str) -> list[Scope]:
    """Three committed entries each for the CIAS (a user) and the Département (an API client),
    written in two transactions open at the same time, interleaved."""
    scopes = [
        _scope(world, "cias_agent", request_id=marker),
        _scope(world, "client_with_scopes", request_id=marker),
    ]
    async with app_engine.connect() as a, app_engine.connect() as b:
        sessions = [await _session_for(a, scopes[0]), await _session_for(b, scopes[1])]
        async with asyncio.timeout(10):  # a lock shared between organisations would hang here
            for n in range(3):
                for session, scope in zip(sessions, scopes, strict=True):
                    await AuditLog(session, scope).record(
                        "beneficiary.read", "beneficiary", str(n), beneficiary_id=uuid.uuid4()
                    )
        for session in sessions:
            await session.commit()
            await session.close()
    return scopes


async def test_interleaved_organisations_keep_valid_chains(
    two_chains: list[Scope], tampered: Tampered, marker: str
) -> None:
    async with tampered() as owner:
        assert await verify_chains(owner) == []
        chains = [
            (
                await owner.execute(
                    text(
                        "SELECT * FROM audit_entry WHERE request_id = :m AND organisation_id = :o "
                        "ORDER BY id"
                    ),
                    {"m": marker, "o": scope.organisation_id},
                )
            ).all()
            for scope in two_chains
        ]
    for rows in chains:
        assert len(rows) == 3
        for previous, row in pairwise(rows):
            assert row.prev_hash == previous.hash
    user, client = two_chains
    assert {(r.actor_user_id, r.actor_client_id) for r in chains[0]} == {(user.principal_id, None)}
    assert {(r.actor_user_id, r.actor_client_id) for r in chains[1]} == {
        (None, client.principal_id)
    }
    assert {r.acting_agent for r in chains[1]} == {"Agent 42"}


@pytest.mark.parametrize(
    "change",
    [
        "UPDATE audit_entry SET action = 'beneficiary.update' WHERE id = :id",
        "UPDATE audit_entry SET purpose = 'curiosity' WHERE id = :id",
        "UPDATE audit_entry SET hash = repeat('f', 64) WHERE id = :id",
    ],
)
async def test_a_modified_entry_breaks_its_chain_there(
    two_chains: list[Scope], tampered: Tampered, marker: str, change: str
) -> None:
    cias = two_chains[0].organisation_id
    async with tampered() as owner:
        middle = (await _ids(owner, marker, cias))[1]
        await owner.execute(text(change), {"id": middle})
        assert await verify_chains(owner) == [(cias, middle)]


async def test_a_deleted_middle_entry_is_detected(
    two_chains: list[Scope], tampered: Tampered, marker: str
) -> None:
    departement = two_chains[1].organisation_id
    async with tampered() as owner:
        _, middle, last = await _ids(owner, marker, departement)
        await owner.execute(text("DELETE FROM audit_entry WHERE id = :id"), {"id": middle})
        assert await verify_chains(owner) == [(departement, last)]


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_entry SET action = 'x'",
        "DELETE FROM audit_entry",
    ],
)
async def test_the_runtime_role_cannot_change_the_trail(
    connection: AsyncConnection, world: World, statement: str
) -> None:
    scope = _scope(world, "cias_agent")
    session = await _session_for(connection, scope)
    await AuditLog(session, scope).record("beneficiary.read", "beneficiary", None)
    with pytest.raises(DBAPIError, match="permission denied"):
        async with connection.begin_nested():
            await connection.execute(text(statement))


async def test_the_runtime_role_cannot_insert_an_entry_claiming_to_be_chained(
    connection: AsyncConnection, world: World
) -> None:
    scope = _scope(world, "cias_agent")
    await _session_for(connection, scope)
    with pytest.raises(DBAPIError, match="row-level security"):
        async with connection.begin_nested():
            await connection.execute(
                text(
                    "INSERT INTO audit_entry (at, organisation_id, action, resource_type, "
                    "prev_hash, hash, chain_position) VALUES (now(), :o, 'beneficiary.read', "
                    "'beneficiary', :g, :g, 1)"
                ),
                {"o": scope.organisation_id, "g": GENESIS},
            )


async def test_requests_write_unchained_entries_that_chaining_links_in_id_order(
    app_engine: AsyncEngine, world: World, marker: str, database_url: URL, tampered: Tampered
) -> None:
    scope = _scope(world, "ccas_agent", request_id=marker)
    for n in range(3):
        async with AsyncSession(app_engine) as session, session.begin():
            await set_db_context(
                session, context=DbContext.REQUEST, organisation_id=scope.organisation_id
            )
            await AuditLog(session, scope).record("beneficiary.read", "beneficiary", str(n))
    query = text(
        "SELECT id, chain_position, prev_hash, hash FROM audit_entry WHERE request_id = :m "
        "ORDER BY id"
    )
    async with owner_connection(database_url) as owner:
        written = (await owner.execute(query, {"m": marker})).all()
    assert [(r.chain_position, r.prev_hash, r.hash) for r in written] == [(None, None, None)] * 3
    async with tampered() as owner:  # chains what is pending, as the worker does
        rows = (await owner.execute(query, {"m": marker})).all()
        assert await chain_pending(owner) == 0  # nothing left
        assert await verify_chains(owner) == []
    positions = [r.chain_position for r in rows]
    assert None not in positions and positions == sorted(positions)
    for previous, row in pairwise(rows):
        assert row.prev_hash == previous.hash


async def test_concurrent_writers_of_one_organisation_keep_one_chain(
    app_engine: AsyncEngine, world: World, marker: str, tampered: Tampered
) -> None:
    scope = _scope(world, "ccas_agent", request_id=marker)

    async def write(n: int) -> None:
        async with AsyncSession(app_engine) as session, session.begin():
            await set_db_context(
                session, context=DbContext.REQUEST, organisation_id=scope.organisation_id
            )
            await AuditLog(session, scope).record("beneficiary.read", "beneficiary", str(n))

    async with asyncio.timeout(30):
        await asyncio.gather(*(write(n) for n in range(20)))
    async with tampered() as owner:
        assert len(await _ids(owner, marker, scope.organisation_id)) == 20
        assert await verify_chains(owner) == []


async def test_record_refuses_another_organisation(
    connection: AsyncConnection, world: World
) -> None:
    scope = _scope(world, "cias_agent")
    session = AsyncSession(bind=connection)
    # the transaction acts for the CCAS de Corbie, the scope claims the CIAS
    await set_db_context(
        session, context=DbContext.REQUEST, organisation_id=world.organisations["ccas_corbie"]
    )
    with pytest.raises(DBAPIError, match="row-level security"):
        async with connection.begin_nested():
            await AuditLog(session, scope).record("beneficiary.read", "beneficiary", None)


async def _attach(connection: AsyncConnection, scope: Scope) -> uuid.UUID:
    """A person followed by the scope's organisation (inserted as it, so RLS applies)."""
    person = uuid.uuid4()
    await _session_for(connection, scope)
    now = clock.now()
    await connection.execute(
        text(
            "INSERT INTO beneficiary (id, birth_name, first_names, birth_date, sex, match_keys, "
            "folded_names, created_by_organisation_id, version, created_at, updated_at) "
            "VALUES (:id, 'Test', 'Audit', '1980-01-01', 'F', '{}', 'test audit', :o, 1, :t, :t)"
        ),
        {"id": person, "o": scope.organisation_id, "t": now},
    )
    await connection.execute(
        text(
            "INSERT INTO care_team_membership (id, beneficiary_id, organisation_id, competence, "
            "team_role, source, started_at) VALUES (:id, :p, :o, 'rsa', 'referent', 'test', :t)"
        ),
        {"id": uuid.uuid4(), "p": person, "o": scope.organisation_id, "t": now},
    )
    return person


async def test_access_log_shows_every_organisation_to_an_attached_one(
    connection: AsyncConnection, world: World
) -> None:
    departement = _scope(world, "departement_agent")
    cias = _scope(world, "cias_agent")
    person = await _attach(connection, departement)
    for scope, action in ((departement, "beneficiary.read"), (cias, "beneficiary.export")):
        session = await _session_for(connection, scope)
        await AuditLog(session, scope).record(
            action, "beneficiary", str(person), beneficiary_id=person, purpose="instruction"
        )
    await AuditLog(await _session_for(connection, cias), cias).record(
        "beneficiary.read", "beneficiary", None, beneficiary_id=uuid.uuid4()
    )

    as_departement = AuditLog(await _session_for(connection, departement), departement)
    first = await service.read_access_log(departement, as_departement, person, cursor=None, limit=1)
    assert [(i.organisation.id, i.action) for i in first.items] == [
        (cias.organisation_id, "beneficiary.export")
    ]
    assert first.items[0].organisation.name
    assert first.items[0].actor is not None and first.items[0].actor.id == cias.principal_id
    assert first.next_cursor is not None
    second = await service.read_access_log(
        departement, as_departement, person, cursor=first.next_cursor, limit=1
    )
    assert [(i.organisation.id, i.purpose) for i in second.items] == [
        (departement.organisation_id, "instruction")
    ]
    assert second.next_cursor is None

    # an organisation not attached sees only its own entries about the person
    as_cias = AuditLog(await _session_for(connection, cias), cias)
    page = await service.read_access_log(cias, as_cias, person, cursor=None, limit=50)
    assert [i.organisation.id for i in page.items] == [cias.organisation_id]


async def test_trail_is_the_organisation_own_and_filtered(
    connection: AsyncConnection, world: World
) -> None:
    dpo = _scope(world, "dpo", actions=frozenset({Action.READ_AUDIT}))
    agent = _scope(world, "departement_agent")
    cias = _scope(world, "cias_agent")
    person = uuid.uuid4()
    for scope, action in (
        (agent, "beneficiary.read"),
        (dpo, "beneficiary.export"),
        (agent, "note.create"),
        (cias, "beneficiary.read"),
    ):
        await AuditLog(await _session_for(connection, scope), scope).record(
            action, "beneficiary", None, beneficiary_id=person
        )
    log = AuditLog(await _session_for(connection, dpo), dpo)

    async def actions(**filters: object) -> list[str]:
        arguments: dict[str, object] = {
            "actor_id": None,
            "beneficiary_id": person,
            "action": None,
            "from_": None,
            "to": None,
            "cursor": None,
            "limit": 50,
            **filters,
        }
        page = await service.read_trail(dpo, log, **arguments)  # type: ignore[arg-type]
        return [i.action for i in page.items]

    assert await actions() == ["note.create", "beneficiary.export", "beneficiary.read"]
    assert await actions(actor_id=agent.principal_id) == ["note.create", "beneficiary.read"]
    assert await actions(action="note.create") == ["note.create"]
    today = clock.today()
    assert len(await actions(from_=today, to=today)) == 3
    assert await actions(to=today - timedelta(days=1)) == []
    assert await actions(from_=clock.now() + timedelta(minutes=1)) == []
    assert await actions(from_=date(2000, 1, 1), to=clock.now() + timedelta(minutes=1)) != []

    page = await service.read_trail(
        dpo,
        log,
        actor_id=None,
        beneficiary_id=person,
        action=None,
        from_=None,
        to=None,
        cursor=None,
        limit=2,
    )
    assert page.next_cursor is not None
    assert await actions(cursor=page.next_cursor) == ["beneficiary.read"]
    with pytest.raises(ValidationFailed):
        await actions(cursor="bm90LWEtY3Vyc29y")


async def test_reading_the_trail_needs_the_audit_permission(
    connection: AsyncConnection, world: World
) -> None:
    agent = _scope(world, "departement_agent")
    with pytest.raises(Forbidden):
        await service.read_trail(
            agent,
            AuditLog(await _session_for(connection, agent), agent),
            actor_id=None,
            beneficiary_id=None,
            action=None,
            from_=None,
            to=None,
            cursor=None,
            limit=50,
        )


def test_the_genesis_and_canonical_form_are_stable() -> None:
    entry = {
        "at": clock.now(),
        "organisation_id": uuid.uuid4(),
        "actor_user_id": None,
        "actor_client_id": uuid.uuid4(),
        "acting_agent": None,
        "action": "beneficiary.read",
        "resource_type": "beneficiary",
        "resource_id": "1",
        "beneficiary_id": None,
        "purpose": None,
        "request_id": "r",
    }
    assert len(GENESIS) == 64 and set(GENESIS) == {"0"}
    assert entry_hash(GENESIS, entry) == entry_hash(GENESIS, dict(reversed(entry.items())))
    assert entry_hash(GENESIS, entry) != entry_hash(GENESIS, {**entry, "purpose": "x"})
    assert entry_hash(GENESIS, entry) != entry_hash("1" * 64, entry)
