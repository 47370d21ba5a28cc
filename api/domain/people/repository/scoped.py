"""The base of the people queries: one request's session, and the scope that filters them."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from api.auth.scope import Scope


class Scoped:
    def __init__(self, session: AsyncSession, scope: Scope) -> None:
        self.session = session
        self.scope = scope
