"""The change feed and the webhook outbox, written in the transaction of the change itself.

Every capability that changes a shared record calls :meth:`ChangeLog.record` next to its
write: the event row (id-only) and one outbox row per matching webhook subscription are
committed or rolled back with the change, so nothing is announced that did not happen and
nothing that happened goes unannounced.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession


class ChangeLog:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def record(
        self,
        *,
        type: str,
        resource_id: uuid.UUID,
        action: str,
        event: str,
        audience: Sequence[uuid.UUID],
        status: str | None = None,
    ) -> None:
        """Announce a change of ``type`` (``referral``, ``orientation``, ``dossier``,
        ``beneficiary``, ``convention``, ``access_request``) to the organisations in
        ``audience`` (the parties at the time of the change; the feed and the webhook
        worker re-check what each may see *now*). ``action`` is the feed's (``created``,
        ``updated``, ``status_changed``, ``deleted``…), ``event`` the webhook type
        (``referral.status_changed``…), ``status`` the new status when there is one."""
        # filled in by the change-feed capability (migration 0013)
        return None
