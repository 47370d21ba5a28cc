"""A person's record: discovery previews, the scoped read, writes, the attached list,
merges. Reads go through the attachment probe the row-level policies use."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, func, insert, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from api.db.driver import driver_connection
from api.db.tables import Beneficiary, CareTeamMembership, Commune
from api.domain.audit.repository import insert_one_when
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


class PersonRecord(NamedTuple):
    """The fields of a record a reading shows (and its version), as the person read
    returns them."""

    id: uuid.UUID
    birth_name: str
    usage_name: str | None
    first_names: str
    birth_date: date
    sex: str
    birth_place: str | None
    nir_cipher: bytes | None
    nir_missing_reason: str | None
    commune_code: str | None
    domiciliation_organisation_id: uuid.UUID | None
    address: dict[str, Any] | None
    phone: str | None
    email: str | None
    situation: dict[str, Any] | None
    last_contact_at: datetime | None
    version: int


# The person read in one round trip: the record through the attachment probe (as ``get``), a
# row per membership of the caller's organisation with the categories the access rule grants
# (``guichet_access``, asked as the rule's Python side asks it), and the audit entry of the
# reading, written only when something is granted. A CTE that writes runs whatever the outer
# query reads; ``person`` is read twice, so evaluated once.
_COLUMNS = ", ".join(f"b.{name}" for name in PersonRecord._fields)
# constants only: no value is spliced in
_READ_RECORDED = (
    "WITH person AS MATERIALIZED ("  # noqa: S608
    " SELECT " + _COLUMNS + ", a.categories AS readable"
    " FROM beneficiary b"
    " LEFT JOIN LATERAL guichet_access(ARRAY[b.id], $2::text[]) a ON true"
    " WHERE b.id = $1 AND guichet_is_attached(b.id)"
    "), recorded AS ("
    + insert_one_when(3, "EXISTS (SELECT FROM person WHERE cardinality(readable) > 0)")
    + ") SELECT * FROM person"
)

# The person a partner refers, in one round trip: their last contact touched (retention
# restarts; through the attachment probe, as ``touch_contact``), the record as it was before
# with the touched contact, and the access rule's categories as the person read asks them.
# A CTE that writes runs whether or not the outer query reads it; the outer query reads the
# table as it was when the statement began.
_TOUCHED_COLUMNS = ", ".join(
    "coalesce((SELECT last_contact_at FROM touched), b.last_contact_at) AS last_contact_at"
    if name == "last_contact_at"
    else f"b.{name}"
    for name in PersonRecord._fields
)
_READ_TOUCHED = (
    "WITH touched AS ("  # noqa: S608 - constants only: no value is spliced in
    " UPDATE beneficiary SET last_contact_at = greatest(last_contact_at, $3::timestamptz)"
    " WHERE id = $1 AND guichet_is_attached(id) RETURNING last_contact_at"
    ") SELECT " + _TOUCHED_COLUMNS + ", a.categories AS readable"
    " FROM beneficiary b"
    " LEFT JOIN LATERAL guichet_access(ARRAY[b.id], $2::text[]) a ON true"
    " WHERE b.id = $1 AND guichet_is_attached(b.id)"
)


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

    async def read_recorded(
        self, person_id: uuid.UUID, role_categories: Sequence[str] | None, entry: Sequence[Any]
    ) -> tuple[PersonRecord, list[str]] | None:
        """The record and the categories the access rule grants the caller on it, all its
        memberships together (None: not attached), with the audit ``entry``
        (:meth:`AuditLog.entry`) written in the same statement when one grants something.
        On the session's driver connection (api.db.driver): the hottest read of the
        service."""
        driver = await driver_connection(self.session)
        rows = await driver.fetch(_READ_RECORDED, person_id, role_categories, *entry)
        if not rows:
            return None
        first = rows[0]
        granted = [code for row in rows for code in row["readable"] or ()]
        return PersonRecord(*(first[name] for name in PersonRecord._fields)), granted

    async def read_touched(
        self, person_id: uuid.UUID, role_categories: Sequence[str] | None, at: datetime
    ) -> tuple[PersonRecord, list[str]] | None:
        """:meth:`touch_contact` and :meth:`read_recorded` (without an audit entry) in one
        statement: the record with its last contact at ``at`` at least, and the categories
        the access rule grants the caller on it (None: not attached)."""
        driver = await driver_connection(self.session)
        rows = await driver.fetch(_READ_TOUCHED, person_id, role_categories, at)
        if not rows:
            return None
        first = rows[0]
        granted = [code for row in rows for code in row["readable"] or ()]
        return PersonRecord(*(first[name] for name in PersonRecord._fields)), granted

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
