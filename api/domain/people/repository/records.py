"""A person's record: discovery previews, the scoped read, writes, the attached list,
merges. Reads go through the attachment probe the row-level policies use."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, insert, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from api.db.tables import Beneficiary, CareTeamMembership, Commune
from api.domain.people.repository.scoped import Scoped
from api.problems import Conflict, NotFound


@dataclass(frozen=True)
class FollowerRow:
    """An organisation following a person, as ``person_followers`` tells a preview."""

    beneficiary_id: uuid.UUID
    organisation_id: uuid.UUID
    organisation_name: str
    competence: str


@dataclass(frozen=True)
class MovedRows:
    """How many rows of one column a merge re-pointed from the duplicate to the survivor."""

    table_name: str
    column_name: str
    moved: int


def attached() -> ColumnElement[bool]:
    """The repository filter: an active membership of the scope's organisation, asked of
    the same SQL probe the row-level policies use (``guichet_is_attached``)."""
    return func.guichet_is_attached(col(Beneficiary.id))


class PersonRecords(Scoped):
    # discovery (previews only) --------------------------------------------------------

    async def followers(self, ids: Sequence[uuid.UUID]) -> list[FollowerRow]:
        fn = func.person_followers(list(ids)).table_valued(
            "beneficiary_id", "organisation_id", "organisation_name", "competence"
        )
        return [
            FollowerRow(
                beneficiary_id=r.beneficiary_id,
                organisation_id=r.organisation_id,
                organisation_name=r.organisation_name,
                competence=r.competence,
            )
            for r in await self.session.execute(select(fn))
        ]

    async def commune_names(self, codes: Sequence[str]) -> dict[str, str]:
        rows = await self.session.execute(
            select(col(Commune.code), col(Commune.name)).where(col(Commune.code).in_(list(codes)))
        )
        return {code: name for code, name in rows}

    # records --------------------------------------------------------------------------

    async def insert(self, values: dict[str, Any]) -> None:
        # no RETURNING: the row becomes readable only once its care-team membership exists
        await self.session.execute(insert(Beneficiary).values(**values))

    async def get(self, person_id: uuid.UUID) -> Beneficiary | None:
        stmt = (
            select(Beneficiary)
            .where(col(Beneficiary.id) == person_id, attached())
            .execution_options(populate_existing=True)
        )
        return (await self.session.scalars(stmt)).first()

    async def update(self, person_id: uuid.UUID, version: int, values: dict[str, Any]) -> bool:
        """Applied only if the row is still at ``version``: concurrent writers cannot both win."""
        stmt = (
            update(Beneficiary)
            .where(
                col(Beneficiary.id) == person_id,
                col(Beneficiary.version) == version,
                attached(),
            )
            .values(**values, version=col(Beneficiary.version) + 1)
            .returning(col(Beneficiary.id))
        )
        return (await self.session.execute(stmt)).first() is not None

    async def attached_page(
        self,
        *,
        competence: str | None,
        commune: str | None,
        after: uuid.UUID | None,
        limit: int,
    ) -> list[Beneficiary]:
        memberships = select(col(CareTeamMembership.beneficiary_id)).where(
            col(CareTeamMembership.organisation_id) == self.scope.organisation_id,
            col(CareTeamMembership.ended_at).is_(None),
        )
        if competence:
            memberships = memberships.where(col(CareTeamMembership.competence) == competence)
        stmt = select(Beneficiary).where(
            col(Beneficiary.id).in_(memberships), col(Beneficiary.merged_into_id).is_(None)
        )
        if commune:
            stmt = stmt.where(col(Beneficiary.commune_code) == commune)
        if after is not None:
            stmt = stmt.where(col(Beneficiary.id) > after)
        stmt = stmt.order_by(col(Beneficiary.id)).limit(limit + 1)
        found = await self.session.scalars(stmt.execution_options(populate_existing=True))
        return list(found.all())

    async def touch_contact(self, person_id: uuid.UUID, at: datetime) -> None:
        """The person came forward (consent given or withdrawn…): retention restarts."""
        await self.session.execute(
            update(Beneficiary)
            .where(col(Beneficiary.id) == person_id, attached())
            .values(last_contact_at=func.greatest(col(Beneficiary.last_contact_at), at))
        )

    # merges (SECURITY DEFINER: they reach every table) --------------------------------

    async def merged_into(self, person_id: uuid.UUID) -> uuid.UUID | None:
        found: uuid.UUID | None = await self.session.scalar(
            select(func.person_merged_into(person_id))
        )
        return found

    async def merge(
        self, survivor_id: uuid.UUID, duplicate_id: uuid.UUID, now: datetime
    ) -> list[MovedRows]:
        """Re-point every row referring to the duplicate; (table, column, moved) per column."""
        fn = func.merge_beneficiaries(survivor_id, duplicate_id, now).table_valued(
            "table_name", "column_name", "moved"
        )
        try:
            async with self.session.begin_nested():  # the error below leaves it usable
                rows = (await self.session.execute(select(fn))).all()
        except DBAPIError as error:
            await self._merge_failed(error, duplicate_id)
            raise
        return [MovedRows(r.table_name, r.column_name, int(r.moved)) for r in rows]

    async def _merge_failed(self, error: DBAPIError, duplicate_id: uuid.UUID) -> None:
        """The problem a refused merge answers, raised; an unforeseen error returns."""
        state = getattr(error.orig, "sqlstate", None)
        if state == "55000":  # merged or anonymised meanwhile
            raise Conflict(detail="One of the records was merged meanwhile.") from None
        if state == "42501":  # no longer followed: perhaps merged by a merge just ended
            if await self.merged_into(duplicate_id) is not None:
                raise Conflict(detail="One of the records was merged meanwhile.") from None
            raise NotFound(detail="No such person.") from None
        if state in ("23505", "23P01"):  # both records hold a row that must stay unique
            raise Conflict(
                detail="Both records hold records that cannot coexist (e.g. two active "
                "orientations for one competence): close one, then merge."
            ) from None


async def locate_person(session: AsyncSession, person_id: uuid.UUID) -> tuple[bool, str | None]:
    """Whether the person exists and their commune, without reading their record."""
    fn = func.person_locator(person_id).table_valued("commune_code")
    row = (await session.execute(select(fn))).first()
    return (row is not None, row.commune_code if row else None)
