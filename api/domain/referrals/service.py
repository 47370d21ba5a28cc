"""Referrals and orientations: use cases (sending, answering, deadlines)."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from api.auth.scope import Scope


async def cancel_for_withdrawn_consent(
    session: AsyncSession, scope: Scope, consent_id: uuid.UUID, reason: str
) -> list[uuid.UUID]:
    """Cancel the open referrals a withdrawn consent covered and end the access they gave
    (domain.md §6). Returns the ids of the cancelled referrals."""
    return []
