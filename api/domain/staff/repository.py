"""Staff governance: members and their roles, invitations, and role grants awaiting a second
admin."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import ColumnElement, delete, func, literal, select, text, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from api.auth.scope import Scope
from api.db.tables import AppUser, Membership, Organisation, RoleGrant


class Member(NamedTuple):
    """A membership and the person it is for."""

    membership: Membership
    email: str
    full_name: str


class Invitation(NamedTuple):
    """A membership another organisation offers the signed-in user."""

    organisation_id: uuid.UUID
    organisation_name: str
    organisation_kind: str
    roles: list[str]
    created_at: datetime


def _membership(organisation_id: uuid.UUID, user_id: uuid.UUID) -> list[ColumnElement[bool]]:
    return [
        col(Membership.organisation_id) == organisation_id,
        col(Membership.user_id) == user_id,
    ]


class MemberStore:
    """Members as seen by the organisation that manages them (its admins, or the platform
    operator for a first admin) and invitations as seen by the invited user; row-level
    security repeats both boundaries."""

    def __init__(self, session: AsyncSession, scope: Scope) -> None:
        self.session = session
        self.scope = scope

    async def of_organisation(self, organisation_id: uuid.UUID) -> list[Member]:
        stmt = (
            select(Membership, col(AppUser.email), col(AppUser.full_name))
            .join(AppUser, col(AppUser.id) == col(Membership.user_id))
            .where(col(Membership.organisation_id) == organisation_id)
            .order_by(col(AppUser.email))
            .execution_options(populate_existing=True)
        )
        return [Member(*r) for r in await self.session.execute(stmt)]

    async def get(self, organisation_id: uuid.UUID, user_id: uuid.UUID) -> Member | None:
        stmt = (
            select(Membership, col(AppUser.email), col(AppUser.full_name))
            .join(AppUser, col(AppUser.id) == col(Membership.user_id))
            .where(*_membership(organisation_id, user_id))
            .execution_options(populate_existing=True)
        )
        found = (await self.session.execute(stmt)).first()
        return Member(*found) if found else None

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
        stmt = select(col(Membership.roles)).where(*_membership(organisation_id, user_id))
        roles = await self.session.scalar(stmt.with_for_update() if for_update else stmt)
        return frozenset(roles) if roles is not None else frozenset()

    async def is_member(self, organisation_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        stmt = select(col(Membership.id)).where(*_membership(organisation_id, user_id))
        return (await self.session.execute(stmt)).first() is not None

    async def admin_count(self, organisation_id: uuid.UUID) -> int:
        """Admins who accepted their membership (an invited admin decides nothing yet)."""
        count = await self.session.scalar(
            select(func.count()).where(
                col(Membership.organisation_id) == organisation_id,
                col(Membership.accepted_at).is_not(None),
                literal("admin") == func.any(col(Membership.roles)),
            )
        )
        return int(count or 0)

    async def set_roles(
        self, organisation_id: uuid.UUID, user_id: uuid.UUID, roles: Sequence[str]
    ) -> bool:
        stmt = (
            update(Membership)
            .where(*_membership(organisation_id, user_id))
            .values(roles=list(roles))
            .returning(col(Membership.id))
        )
        return (await self.session.execute(stmt)).first() is not None

    async def add_roles(
        self, organisation_id: uuid.UUID, user_id: uuid.UUID, roles: Sequence[str]
    ) -> bool:
        """Adds ``roles`` to the member's, the row locked between read and write."""
        current = await self.roles_of(organisation_id, user_id, for_update=True)
        return await self.set_roles(organisation_id, user_id, sorted(current | set(roles)))

    async def remove(self, organisation_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        stmt = (
            delete(Membership)
            .where(*_membership(organisation_id, user_id))
            .returning(col(Membership.id))
        )
        return (await self.session.execute(stmt)).first() is not None

    # invitations: the signed-in user's own memberships not yet accepted ------------------

    async def invitations(self, user_id: uuid.UUID) -> list[Invitation]:
        stmt = (
            select(
                col(Membership.organisation_id),
                col(Organisation.name),
                col(Organisation.kind),
                col(Membership.roles),
                col(Membership.created_at),
            )
            .join(Organisation, col(Organisation.id) == col(Membership.organisation_id))
            .where(col(Membership.user_id) == user_id, col(Membership.accepted_at).is_(None))
            .order_by(col(Membership.created_at), col(Membership.organisation_id))
        )
        return [Invitation(*r) for r in await self.session.execute(stmt)]

    async def accept_invitation(
        self, user_id: uuid.UUID, organisation_id: uuid.UUID, now: datetime
    ) -> bool:
        stmt = (
            update(Membership)
            .where(*_membership(organisation_id, user_id), col(Membership.accepted_at).is_(None))
            .values(accepted_at=now)
            .returning(col(Membership.id))
        )
        return (await self.session.execute(stmt)).first() is not None

    async def decline_invitation(self, user_id: uuid.UUID, organisation_id: uuid.UUID) -> bool:
        stmt = (
            delete(Membership)
            .where(*_membership(organisation_id, user_id), col(Membership.accepted_at).is_(None))
            .returning(col(Membership.id))
        )
        return (await self.session.execute(stmt)).first() is not None


class RoleGrantStore:
    """Role grants of the organisations the scope may manage (its own; every one for the
    platform operator, which approves for single-admin organisations)."""

    def __init__(self, session: AsyncSession, scope: Scope) -> None:
        self.session = session
        self.scope = scope

    async def add(self, grant: RoleGrant) -> RoleGrant | None:
        """The grant as stored; None when one is already pending for this member."""
        stmt = (
            insert(RoleGrant)
            .values(grant.model_dump())
            .on_conflict_do_nothing(
                index_elements=["organisation_id", "user_id"],
                index_where=text("status = 'pending'"),
            )
            .returning(RoleGrant)
        )
        return (await self.session.scalars(stmt)).first()

    async def get(
        self, organisation_id: uuid.UUID, grant_id: uuid.UUID, *, for_update: bool = False
    ) -> RoleGrant | None:
        stmt = select(RoleGrant).where(
            col(RoleGrant.organisation_id) == organisation_id, col(RoleGrant.id) == grant_id
        )
        if for_update:
            stmt = stmt.with_for_update()
        stmt = stmt.execution_options(populate_existing=True)
        return (await self.session.scalars(stmt)).first()

    async def pending_for(self, organisation_id: uuid.UUID, user_id: uuid.UUID) -> RoleGrant | None:
        stmt = (
            select(RoleGrant)
            .where(
                col(RoleGrant.organisation_id) == organisation_id,
                col(RoleGrant.user_id) == user_id,
                col(RoleGrant.status) == "pending",
            )
            .execution_options(populate_existing=True)
        )
        return (await self.session.scalars(stmt)).first()

    async def page(
        self,
        organisation_id: uuid.UUID,
        *,
        status: str | None,
        after: tuple[datetime, uuid.UUID] | None,
        limit: int,
    ) -> list[RoleGrant]:
        """Newest first; ``limit + 1`` rows at most."""
        stmt = select(RoleGrant).where(col(RoleGrant.organisation_id) == organisation_id)
        if status is not None:
            stmt = stmt.where(col(RoleGrant.status) == status)
        if after is not None:
            stmt = stmt.where(tuple_(col(RoleGrant.requested_at), col(RoleGrant.id)) < after)
        stmt = stmt.order_by(col(RoleGrant.requested_at).desc(), col(RoleGrant.id).desc())
        stmt = stmt.limit(limit + 1).execution_options(populate_existing=True)
        return list((await self.session.scalars(stmt)).all())

    async def decide(
        self, grant_id: uuid.UUID, status: str, decided_by: uuid.UUID, now: datetime
    ) -> RoleGrant | None:
        """Moves a pending grant to ``status``; None when it was decided meanwhile."""
        stmt = (
            update(RoleGrant)
            .where(col(RoleGrant.id) == grant_id, col(RoleGrant.status) == "pending")
            .values(status=status, decided_by=decided_by, decided_at=now)
            .returning(RoleGrant)
            .execution_options(populate_existing=True)
        )
        return (await self.session.scalars(stmt)).first()

    async def cancel_pending(
        self, organisation_id: uuid.UUID, user_id: uuid.UUID, decided_by: uuid.UUID, now: datetime
    ) -> list[uuid.UUID]:
        stmt = (
            update(RoleGrant)
            .where(
                col(RoleGrant.organisation_id) == organisation_id,
                col(RoleGrant.user_id) == user_id,
                col(RoleGrant.status) == "pending",
            )
            .values(status="cancelled", decided_by=decided_by, decided_at=now)
            .returning(col(RoleGrant.id))
        )
        return list((await self.session.scalars(stmt)).all())
