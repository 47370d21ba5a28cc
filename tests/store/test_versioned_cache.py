"""A value a request reads for a process-wide cache is stored only when its transaction
commits: never served to another request before, never kept after a rollback."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from api.db.context import DbContext, set_db_context
from api.db.versioned import VersionedCache


async def _session(engine: AsyncEngine) -> AsyncSession:
    session = AsyncSession(engine)
    await set_db_context(session, context=DbContext.ANONYMOUS, read_version=True)
    return session


async def test_a_value_is_stored_when_its_transaction_commits(app_engine: AsyncEngine) -> None:
    cache: VersionedCache[str] = VersionedCache()
    writer, other = await _session(app_engine), await _session(app_engine)
    try:
        cache.put(writer, "who", "read by the writer")
        assert cache.get(writer, "who") == "read by the writer"  # its own transaction
        assert cache.get(other, "who") is None  # not committed: nobody else's
        async with writer.begin_nested():
            await writer.execute(text("SELECT 1"))
        assert cache.get(other, "who") is None  # a savepoint released commits nothing
        await writer.commit()
        assert cache.get(other, "who") == "read by the writer"
    finally:
        await writer.close()
        await other.close()


async def test_a_rolled_back_transaction_stores_nothing(app_engine: AsyncEngine) -> None:
    cache: VersionedCache[str] = VersionedCache()
    failed = await _session(app_engine)
    cache.put(failed, "who", "seen in a transaction that failed")
    await failed.rollback()
    await failed.close()

    later = await _session(app_engine)
    try:
        assert cache.get(later, "who") is None
    finally:
        await later.close()
