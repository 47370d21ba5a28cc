"""Orientations, read through the request's scope: an orientation is its parties' (issuer,
target) and its person's care team's. Row-level security repeats the boundary."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, insert, literal, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import aliased
from sqlmodel import col

from api.auth.scope import Scope
from api.domain.organisations.tables import Organisation
from api.domain.orientations.tables import Orientation, OrientationEvent
from api.domain.people.tables import CareTeamMembership
from api.domain.referrals.repository import MaybePartyOf, Party, PartyOf, end_origin_memberships


@dataclass(frozen=True, slots=True)
class PartiesOfOrientation:
    """An orientation and the organisations it names."""

    orientation: Orientation
    issuer: Party
    target: Party


@dataclass(frozen=True, slots=True)
class OrientationEventRow:
    orientation_id: uuid.UUID
    at: datetime
    from_status: str | None
    to_status: str
    organisation: Party | None
    actor_user_id: uuid.UUID | None
    actor_client_id: uuid.UUID | None
    acting_agent: str | None
    reason_code: str | None
    comment: str | None


_issuer = aliased(Organisation, name="issuer")
_target = aliased(Organisation, name="target")
_event_org = aliased(Organisation, name="event_org")

_WITH_PARTIES = (
    select(Orientation, PartyOf("issuer", _issuer), PartyOf("target", _target))
    .join(_issuer, col(_issuer.id) == col(Orientation.issuer_organisation_id))
    .join(_target, col(_target.id) == col(Orientation.target_organisation_id))
    # every read shows the row as the database has it now, not as an earlier read left it
    .execution_options(populate_existing=True)
)

_EVENTS = select(
    col(OrientationEvent.orientation_id),
    col(OrientationEvent.at),
    col(OrientationEvent.from_status),
    col(OrientationEvent.to_status),
    MaybePartyOf("organisation", _event_org),
    col(OrientationEvent.actor_user_id),
    col(OrientationEvent.actor_client_id),
    col(OrientationEvent.acting_agent),
    col(OrientationEvent.reason_code),
    col(OrientationEvent.comment),
).outerjoin(_event_org, col(_event_org.id) == col(OrientationEvent.organisation_id))

#: Core-style writes: the rows read are refreshed by the next read, not kept in step here
_WRITE = {"synchronize_session": False}


class OrientationStore:
    def __init__(self, session: AsyncSession, scope: Scope) -> None:
        self.session = session
        self.scope = scope

    def _visible(self) -> ColumnElement[bool]:
        org = self.scope.organisation_id
        team = CareTeamMembership
        attached = select(col(team.beneficiary_id)).where(
            col(team.organisation_id) == org, col(team.ended_at).is_(None)
        )
        return or_(
            col(Orientation.issuer_organisation_id) == org,
            col(Orientation.target_organisation_id) == org,
            col(Orientation.beneficiary_id).in_(attached),
        )

    async def insert(self, values: dict[str, Any]) -> None:
        await self.session.execute(insert(Orientation).values(**values))

    async def get(
        self, orientation_id: uuid.UUID, *, for_update: bool = False
    ) -> PartiesOfOrientation | None:
        if for_update:
            locked = select(col(Orientation.id)).where(
                col(Orientation.id) == orientation_id, self._visible()
            )
            if (await self.session.execute(locked.with_for_update())).first() is None:
                return None
        stmt = _WITH_PARTIES.where(col(Orientation.id) == orientation_id, self._visible())
        row = (await self.session.execute(stmt)).first()
        return None if row is None else PartiesOfOrientation(*row)

    async def active(
        self, beneficiary_id: uuid.UUID, competence: str, *, for_update: bool = True
    ) -> Orientation | None:
        stmt = (
            select(Orientation)
            .where(
                col(Orientation.beneficiary_id) == beneficiary_id,
                col(Orientation.competence) == competence,
                col(Orientation.status) == "accepted",
            )
            .execution_options(populate_existing=True)
        )
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.scalars(stmt)).first()

    async def update(self, orientation_id: uuid.UUID, values: dict[str, Any]) -> None:
        await self.session.execute(
            update(Orientation)
            .where(col(Orientation.id) == orientation_id)
            .values(**values, version=col(Orientation.version) + 1)
            .execution_options(**_WRITE)
        )

    async def add_event(self, values: dict[str, Any]) -> None:
        await self.session.execute(insert(OrientationEvent).values(**values))

    async def events(
        self, orientation_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, list[OrientationEventRow]]:
        """The events of these orientations, oldest first, by orientation."""
        stmt = _EVENTS.where(col(OrientationEvent.orientation_id).in_(list(orientation_ids)))
        by_orientation: dict[uuid.UUID, list[OrientationEventRow]] = defaultdict(list)
        for row in await self.session.execute(stmt.order_by(col(OrientationEvent.id))):
            event = OrientationEventRow(**row._mapping)
            by_orientation[event.orientation_id].append(event)
        return by_orientation

    async def page(
        self,
        *,
        box: str | None,
        status: str | None,
        beneficiary_id: uuid.UUID | None,
        after: tuple[datetime, uuid.UUID] | None,
        limit: int,
    ) -> list[PartiesOfOrientation]:
        org = self.scope.organisation_id
        stmt = _WITH_PARTIES
        if box == "inbox":
            stmt = stmt.where(col(Orientation.target_organisation_id) == org)
        elif box == "outbox":
            stmt = stmt.where(col(Orientation.issuer_organisation_id) == org)
        else:
            stmt = stmt.where(self._visible())
        if status:
            stmt = stmt.where(col(Orientation.status) == status)
        if beneficiary_id:
            stmt = stmt.where(col(Orientation.beneficiary_id) == beneficiary_id)
        if after is not None:
            stmt = stmt.where(
                tuple_(col(Orientation.created_at), col(Orientation.id))
                < tuple_(literal(after[0]), after[1])
            )
        stmt = stmt.order_by(col(Orientation.created_at).desc(), col(Orientation.id).desc()).limit(
            limit + 1
        )
        return [PartiesOfOrientation(*row) for row in await self.session.execute(stmt)]

    async def end_memberships(self, origin_id: uuid.UUID, reason: str, at: datetime) -> int:
        return await end_origin_memberships(self.session, origin_id, reason, at)

    async def is_member(self, organisation_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        """Whether a user belongs to an organisation (a référent must)."""
        fn = func.guichet_is_member(organisation_id, user_id)
        return bool(await self.session.scalar(select(fn)))


async def anonymise_orientations(
    conn: AsyncConnection, person_ids: Sequence[uuid.UUID], now: datetime
) -> None:
    """Retention: the free text of orientations about people being anonymised goes (reasons,
    comments); ids, codes, statuses and dates stay for the statistics. Runs in the purge's
    owner transaction."""
    ids = list(person_ids)
    oriented = select(col(Orientation.id)).where(col(Orientation.beneficiary_id).in_(ids))
    await conn.execute(
        update(Orientation)
        .where(col(Orientation.beneficiary_id).in_(ids))
        .values(reason="", updated_at=now)
    )
    await conn.execute(
        update(OrientationEvent)
        .where(col(OrientationEvent.orientation_id).in_(oriented))
        .values(comment=None)
    )
