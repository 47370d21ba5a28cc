"""Entries written by the batch (one INSERT for a list page) keep the page's order and, once
chained, interleave with concurrent single writers without forking the chain."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from itertools import pairwise

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from api.auth.permissions import Action
from api.auth.scope import PrincipalKind, Scope
from api.db.context import DbContext, set_db_context
from api.db.engine import owner_connection
from api.domain.audit.repository import Access, AuditLog
from api.jobs.audit_chain import chain_pending, verify_chains
from tests.world import World


def _scope(world: World, persona: str, request_id: str) -> Scope:
    p = world.personas[persona]
    assert p.principal_id is not None and p.organisation_id is not None
    return Scope(
        principal_kind=PrincipalKind.USER,
        principal_id=p.principal_id,
        organisation_id=p.organisation_id,
        organisation_kind="ccas",
        roles=frozenset(p.roles),
        client_scopes=frozenset(),
        actions=frozenset({Action.READ_AUDIT}),
        categories=frozenset(),
        territory=frozenset(),
        law_competences=frozenset(),
        request_id=request_id,
    )


@pytest.fixture
async def marker(database_url: URL) -> AsyncIterator[str]:
    value = f"test-audit-batch-{uuid.uuid4()}"
    yield value
    async with owner_connection(database_url) as owner:
        await owner.execute(text("DELETE FROM audit_entry WHERE request_id = :m"), {"m": value})


async def _write(engine: AsyncEngine, scope: Scope, accesses: list[Access]) -> None:
    async with AsyncSession(engine) as session, session.begin():
        await set_db_context(
            session, context=DbContext.REQUEST, organisation_id=scope.organisation_id
        )
        await AuditLog(session, scope).record_many(accesses)


async def test_a_batch_chains_in_order_among_concurrent_writers(
    app_engine: AsyncEngine, world: World, database_url: URL, marker: str
) -> None:
    scope = _scope(world, "association_agent", marker)
    people = [uuid.uuid4() for _ in range(50)]
    batch = [Access("beneficiary.list", "beneficiary", str(p), beneficiary_id=p) for p in people]
    singles = [
        [Access("beneficiary.read", "beneficiary", str(n), beneficiary_id=uuid.uuid4())]
        for n in range(10)
    ]
    async with asyncio.timeout(30):
        await asyncio.gather(
            _write(app_engine, scope, batch),
            *(_write(app_engine, scope, one) for one in singles),
            _write(app_engine, scope, []),  # an empty page writes nothing
        )
    async with owner_connection(database_url) as owner:
        assert await chain_pending(owner) >= 60
        rows = (
            await owner.execute(
                text(
                    "SELECT id, action, beneficiary_id, prev_hash, hash FROM audit_entry "
                    "WHERE request_id = :m ORDER BY id"
                ),
                {"m": marker},
            )
        ).all()
        assert await verify_chains(owner) == []
    assert len(rows) == 60
    listed = [r for r in rows if r.action == "beneficiary.list"]
    # in the page's order (concurrent writers may take ids in between: no lock any more)
    assert [r.id for r in listed] == sorted(r.id for r in listed)
    # chained in id order, one chain: no fork among the concurrent writers
    for previous, row in pairwise(rows):
        assert row.prev_hash == previous.hash
