"""Taking an idempotency key waits at most its ``wait`` on another request's key, and leaves
the rest of the transaction with the lock timeout it had."""

from __future__ import annotations

import os
import uuid
from datetime import timedelta
from types import SimpleNamespace
from typing import cast

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from api.auth.scope import Scope
from api.db.context import DbContext, set_db_context
from api.domain.changes.repository import Sealer
from api.http.idempotency_keys import IdempotencyKeys
from tests.world import World


async def test_a_claim_puts_the_lock_timeout_back(
    connection: AsyncConnection, world: World
) -> None:
    persona = world.personas["ccas_rsa_agent"]
    session = AsyncSession(bind=connection)
    await set_db_context(
        session,
        context=DbContext.REQUEST,
        organisation_id=persona.organisation_id,
        principal_id=persona.principal_id,
    )
    await session.execute(text("SELECT set_config('lock_timeout', '1234ms', true)"))
    # the store reads the principal and the organisation of its scope, nothing else
    scope = cast(
        Scope,
        SimpleNamespace(principal_id=persona.principal_id, organisation_id=persona.organisation_id),
    )
    keys = IdempotencyKeys(session, scope, Sealer(os.urandom(32)))

    taken = await keys.claim(
        str(uuid.uuid4()), "hash", window=timedelta(days=1), wait=timedelta(milliseconds=250)
    )

    assert taken is None  # a new key: ours
    assert await session.scalar(text("SELECT current_setting('lock_timeout')")) == "1234ms"
