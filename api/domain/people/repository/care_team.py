"""Care teams: who follows a person, joining and leaving."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlmodel import col

from api.db.tables import CareTeamMembership, Organisation
from api.domain.people.repository.scoped import Scoped


@dataclass(frozen=True)
class TeamMember:
    """A membership with the name and kind of its organisation."""

    membership: CareTeamMembership
    organisation_name: str
    organisation_kind: str

    def fields(self) -> dict[str, Any]:
        """The membership's columns, then its organisation's name and kind."""
        return {
            **self.membership.model_dump(),
            "organisation_name": self.organisation_name,
            "organisation_kind": self.organisation_kind,
        }


class CareTeamQueries(Scoped):
    async def team(self, person_id: uuid.UUID) -> list[TeamMember]:
        stmt = (
            select(CareTeamMembership, col(Organisation.name), col(Organisation.kind))
            .join(Organisation, col(Organisation.id) == col(CareTeamMembership.organisation_id))
            .where(col(CareTeamMembership.beneficiary_id) == person_id)
            .order_by(col(CareTeamMembership.started_at), col(CareTeamMembership.id))
            .execution_options(populate_existing=True)
        )
        rows = await self.session.execute(stmt)
        return [TeamMember(m, name, kind) for m, name, kind in rows]

    async def own_memberships(self, person_ids: Sequence[uuid.UUID]) -> list[CareTeamMembership]:
        stmt = (
            select(CareTeamMembership)
            .where(
                col(CareTeamMembership.beneficiary_id).in_(list(person_ids)),
                col(CareTeamMembership.organisation_id) == self.scope.organisation_id,
                col(CareTeamMembership.ended_at).is_(None),
            )
            .execution_options(populate_existing=True)
        )
        return list((await self.session.scalars(stmt)).all())

    async def join(self, values: dict[str, Any]) -> None:
        await self.session.execute(insert(CareTeamMembership).values(**values))

    async def leave(self, membership_id: uuid.UUID, now: datetime, reason: str) -> uuid.UUID | None:
        """End the scope's organisation's active membership; the person it was about."""
        stmt = (
            update(CareTeamMembership)
            .where(
                col(CareTeamMembership.id) == membership_id,
                col(CareTeamMembership.organisation_id) == self.scope.organisation_id,
                col(CareTeamMembership.ended_at).is_(None),
            )
            .values(ended_at=now, end_reason=reason)
            .returning(col(CareTeamMembership.beneficiary_id))
        )
        found: uuid.UUID | None = (await self.session.execute(stmt)).scalar()
        return found
