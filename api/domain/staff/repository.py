"""Staff governance: enrolment, invitations and role grants awaiting a second admin."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, delete, func, literal, select, text, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth.scope import Scope
from api.db.tables import Membership, Organisation, RoleGrant

_membership = Membership.__table__  # type: ignore[attr-defined]
_org = Organisation.__table__  # type: ignore[attr-defined]
_grant = RoleGrant.__table__  # type: ignore[attr-defined]

AnyRow = Row[tuple[Any, ...]]


class StaffStore:
    """Members as seen by the organisation that manages them (its admins, or the platform
    operator for a first admin) and invitations as seen by the invited user; row-level
    security repeats both boundaries."""

    def __init__(self, session: AsyncSession, scope: Scope) -> None:
        self.session = session
        self.scope = scope

    async def enrol(
        self,
        organisation_id: uuid.UUID,
        *,
        email: str,
        full_name: str,
        password_hash: str | None,
        roles: Sequence[str],
        now: datetime,
    ) -> tuple[uuid.UUID, str]:
        """The user's id and ``added``, ``invited`` (they work for another organisation:
        the membership waits for their acceptance) or ``already_member``."""
        found = func.enrol_member(
            organisation_id, email, full_name, password_hash, list(roles), now
        ).table_valued("user_id", "outcome")
        row = (await self.session.execute(select(found.c.user_id, found.c.outcome))).one()
        return row.user_id, str(row.outcome)

    async def roles_of(
        self, organisation_id: uuid.UUID, user_id: uuid.UUID, *, for_update: bool = False
    ) -> frozenset[str]:
        stmt = select(_membership.c.roles).where(
            _membership.c.organisation_id == organisation_id, _membership.c.user_id == user_id
        )
        roles = await self.session.scalar(stmt.with_for_update() if for_update else stmt)
        return frozenset(roles) if roles is not None else frozenset()

    async def is_member(self, organisation_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        stmt = select(_membership.c.id).where(
            _membership.c.organisation_id == organisation_id, _membership.c.user_id == user_id
        )
        return (await self.session.execute(stmt)).first() is not None

    async def admin_count(self, organisation_id: uuid.UUID) -> int:
        """Admins who accepted their membership (an invited admin decides nothing yet)."""
        count = await self.session.scalar(
            select(func.count()).where(
                _membership.c.organisation_id == organisation_id,
                _membership.c.accepted_at.is_not(None),
                literal("admin") == func.any(_membership.c.roles),
            )
        )
        return int(count or 0)

    async def add_roles(
        self, organisation_id: uuid.UUID, user_id: uuid.UUID, roles: Sequence[str]
    ) -> bool:
        """Adds ``roles`` to the member's, the row locked between read and write."""
        current = await self.roles_of(organisation_id, user_id, for_update=True)
        stmt = (
            update(_membership)
            .where(
                _membership.c.organisation_id == organisation_id,
                _membership.c.user_id == user_id,
            )
            .values(roles=sorted(current | set(roles)))
            .returning(_membership.c.id)
        )
        return (await self.session.execute(stmt)).first() is not None

    # invitations: the signed-in user's own memberships not yet accepted ------------------

    async def invitations(self, user_id: uuid.UUID) -> list[Any]:
        stmt = (
            select(
                _membership.c.organisation_id,
                _org.c.name.label("organisation_name"),
                _org.c.kind.label("organisation_kind"),
                _membership.c.roles,
                _membership.c.created_at,
            )
            .join(_org, _org.c.id == _membership.c.organisation_id)
            .where(_membership.c.user_id == user_id, _membership.c.accepted_at.is_(None))
            .order_by(_membership.c.created_at, _membership.c.organisation_id)
        )
        return list((await self.session.execute(stmt)).all())

    async def accept_invitation(
        self, user_id: uuid.UUID, organisation_id: uuid.UUID, now: datetime
    ) -> bool:
        stmt = (
            update(_membership)
            .where(
                _membership.c.user_id == user_id,
                _membership.c.organisation_id == organisation_id,
                _membership.c.accepted_at.is_(None),
            )
            .values(accepted_at=now)
            .returning(_membership.c.id)
        )
        return (await self.session.execute(stmt)).first() is not None

    async def decline_invitation(self, user_id: uuid.UUID, organisation_id: uuid.UUID) -> bool:
        stmt = (
            delete(_membership)
            .where(
                _membership.c.user_id == user_id,
                _membership.c.organisation_id == organisation_id,
                _membership.c.accepted_at.is_(None),
            )
            .returning(_membership.c.id)
        )
        return (await self.session.execute(stmt)).first() is not None


class RoleGrantStore:
    """Role grants of the organisations the scope may manage (its own; every one for the
    platform operator, which approves for single-admin organisations)."""

    def __init__(self, session: AsyncSession, scope: Scope) -> None:
        self.session = session
        self.scope = scope

    async def add(self, values: dict[str, Any]) -> AnyRow | None:
        """None when a grant is already pending for this member."""
        stmt = (
            insert(_grant)
            .values(**values)
            .on_conflict_do_nothing(
                index_elements=["organisation_id", "user_id"],
                index_where=text("status = 'pending'"),
            )
            .returning(*_grant.c)
        )
        return (await self.session.execute(stmt)).first()

    async def get(
        self, organisation_id: uuid.UUID, grant_id: uuid.UUID, *, for_update: bool = False
    ) -> AnyRow | None:
        stmt = select(_grant).where(
            _grant.c.organisation_id == organisation_id, _grant.c.id == grant_id
        )
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).first()

    async def pending_for(self, organisation_id: uuid.UUID, user_id: uuid.UUID) -> AnyRow | None:
        stmt = select(_grant).where(
            _grant.c.organisation_id == organisation_id,
            _grant.c.user_id == user_id,
            _grant.c.status == "pending",
        )
        return (await self.session.execute(stmt)).first()

    async def page(
        self,
        organisation_id: uuid.UUID,
        *,
        status: str | None,
        after: tuple[datetime, uuid.UUID] | None,
        limit: int,
    ) -> list[AnyRow]:
        """Newest first; ``limit + 1`` rows at most."""
        stmt = select(_grant).where(_grant.c.organisation_id == organisation_id)
        if status is not None:
            stmt = stmt.where(_grant.c.status == status)
        if after is not None:
            stmt = stmt.where(tuple_(_grant.c.requested_at, _grant.c.id) < after)
        stmt = stmt.order_by(_grant.c.requested_at.desc(), _grant.c.id.desc()).limit(limit + 1)
        return list((await self.session.execute(stmt)).all())

    async def decide(
        self, grant_id: uuid.UUID, status: str, decided_by: uuid.UUID, now: datetime
    ) -> AnyRow | None:
        """Moves a pending grant to ``status``; None when it was decided meanwhile."""
        stmt = (
            update(_grant)
            .where(_grant.c.id == grant_id, _grant.c.status == "pending")
            .values(status=status, decided_by=decided_by, decided_at=now)
            .returning(*_grant.c)
        )
        return (await self.session.execute(stmt)).first()

    async def cancel_pending(
        self, organisation_id: uuid.UUID, user_id: uuid.UUID, decided_by: uuid.UUID, now: datetime
    ) -> list[uuid.UUID]:
        stmt = (
            update(_grant)
            .where(
                _grant.c.organisation_id == organisation_id,
                _grant.c.user_id == user_id,
                _grant.c.status == "pending",
            )
            .values(status="cancelled", decided_by=decided_by, decided_at=now)
            .returning(_grant.c.id)
        )
        return [r.id for r in await self.session.execute(stmt)]
