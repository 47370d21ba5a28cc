"""``guichet audit-verify``: chain the entries written since the worker's last round, then
check every organisation's audit hash chain as the owner, from its anchor when the retention
purge deleted its oldest entries."""

from __future__ import annotations

from sqlalchemy.engine import URL

from api.db.engine import owner_connection
from api.jobs.audit_chain import chain_pending, verify_chains


async def verify(owner_url: URL) -> int:
    """Print ``organisation_id entry_id`` for each broken chain; return how many are."""
    async with owner_connection(owner_url) as conn:
        await chain_pending(conn)
    async with owner_connection(owner_url) as conn:
        broken = await verify_chains(conn)
    for organisation_id, entry_id in broken:
        print(f"{organisation_id} {entry_id}")
    return len(broken)
