"""The retention purge's queries, across organisations, on an owner connection (the job is
``api.jobs.purge``; the policy is in ``api.domain.people.rules``)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import (
    ColumnElement,
    Date,
    Integer,
    case,
    cast,
    delete,
    exists,
    extract,
    func,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import Mapped, aliased
from sqlmodel import col

from api.db.tables import (
    AccessRequest,
    Beneficiary,
    BudgetLine,
    CareTeamMembership,
    Consent,
    HouseholdMember,
    Note,
    Organisation,
)
from api.domain.people.rules import CODED_END_REASONS

# first half of the two-key advisory lock held by a running purge (see api.domain.audit.repository
# for the other namespaces)
_PURGE_LOCK = (0x50555247, 0)  # "PURG"


@dataclass(frozen=True)
class EndedMembership:
    id: uuid.UUID
    beneficiary_id: uuid.UUID
    organisation_id: uuid.UUID


def _expires() -> ColumnElement[datetime]:
    """When a membership's retention passes: its organisation's months after the person's
    last contact (or their record's creation)."""
    contact = func.coalesce(col(Beneficiary.last_contact_at), col(Beneficiary.created_at))
    return contact + func.make_interval(0, col(Organisation.retention_months))


def _followed() -> ColumnElement[bool]:
    """Some organisation still follows the person."""
    return exists().where(
        col(CareTeamMembership.beneficiary_id) == col(Beneficiary.id),
        col(CareTeamMembership.ended_at).is_(None),
    )


class RetentionStore:
    """The purge's reads and writes, across organisations, on an owner connection."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def lock(self) -> None:
        """Wait for any other purge to finish; held by the connection until :meth:`unlock`
        (across the purge's several transactions)."""
        await self.conn.execute(select(func.pg_advisory_lock(*_PURGE_LOCK)))

    async def unlock(self) -> None:
        await self.conn.execute(select(func.pg_advisory_unlock(*_PURGE_LOCK)))

    async def detach_expired(self, now: datetime) -> list[EndedMembership]:
        """End the memberships whose organisation's retention has passed since the
        person's last contact."""
        stmt = (
            update(CareTeamMembership)
            .where(
                col(CareTeamMembership.ended_at).is_(None),
                col(CareTeamMembership.beneficiary_id) == col(Beneficiary.id),
                col(CareTeamMembership.organisation_id) == col(Organisation.id),
                _expires() <= now,
            )
            .values(ended_at=now, end_reason="retention")
            .returning(
                col(CareTeamMembership.id),
                col(CareTeamMembership.beneficiary_id),
                col(CareTeamMembership.organisation_id),
            )
        )
        return [EndedMembership(*row) for row in await self.conn.execute(stmt)]

    async def due_within(self, now: datetime, until: datetime) -> dict[uuid.UUID, int]:
        """Per organisation, how many of its memberships the purge will end by ``until``."""
        expires = _expires()
        stmt = (
            select(col(CareTeamMembership.organisation_id), func.count())
            .select_from(CareTeamMembership)
            .join(Beneficiary, col(Beneficiary.id) == col(CareTeamMembership.beneficiary_id))
            .join(Organisation, col(Organisation.id) == col(CareTeamMembership.organisation_id))
            .where(col(CareTeamMembership.ended_at).is_(None), expires > now, expires <= until)
            .group_by(col(CareTeamMembership.organisation_id))
        )
        return {org: int(due) for org, due in await self.conn.execute(stmt)}

    async def anonymisable(self, now: datetime, quiet_since: datetime) -> list[uuid.UUID]:
        """People no organisation follows any more, not yet anonymised: the last one left
        through retention, or nothing happened to their record since ``quiet_since``."""
        any_ = aliased(CareTeamMembership, name="any_membership")
        last_left = (
            select(func.max(col(any_.ended_at)))
            .where(col(any_.beneficiary_id) == col(Beneficiary.id))
            .correlate(Beneficiary)
            .scalar_subquery()
        )
        last = aliased(CareTeamMembership, name="last_membership")
        retained = (
            select(col(last.id))
            .where(
                col(last.beneficiary_id) == col(Beneficiary.id),
                col(last.end_reason) == "retention",
                col(last.ended_at) == last_left,
            )
            .correlate(Beneficiary)
            .exists()
        )
        stmt = (
            select(col(Beneficiary.id))
            .where(
                col(Beneficiary.anonymised_at).is_(None),
                ~_followed(),
                or_(
                    retained,
                    func.greatest(last_left, col(Beneficiary.updated_at)) <= quiet_since,
                ),
            )
            .order_by(col(Beneficiary.id))
        )
        return list((await self.conn.execute(stmt)).scalars())

    async def anonymise(self, ids: Sequence[uuid.UUID], now: datetime) -> list[uuid.UUID]:
        """Clear identity, contact, NIR, situation and free text; keep ids, the birth year,
        the commune and the rows statistics count. Skips anyone followed again or already
        anonymised; returns who was anonymised."""
        done = await self.conn.execute(
            update(Beneficiary)
            .where(
                col(Beneficiary.id).in_(list(ids)),
                col(Beneficiary.anonymised_at).is_(None),
                ~_followed(),
            )
            .values(
                birth_name="",
                usage_name=None,
                first_names="",
                birth_date=_january_first(col(Beneficiary.birth_date)),
                sex="X",
                birth_place=None,
                nir_cipher=None,
                nir_hash=None,
                nir_missing_reason=None,
                address=None,
                phone=None,
                email=None,
                situation=None,
                match_keys=[],
                folded_names="",
                anonymised_at=now,
                version=col(Beneficiary.version) + 1,
                updated_at=now,
            )
            .returning(col(Beneficiary.id))
        )
        person_ids = list(done.scalars())
        if person_ids:
            await self._clear_records_of(person_ids)
        return person_ids

    async def _clear_records_of(self, person_ids: list[uuid.UUID]) -> None:
        """Household names and birth dates (to the year), budget, notes and free texts of
        the people just anonymised."""
        birth_date = col(HouseholdMember.birth_date)
        await self.conn.execute(
            update(HouseholdMember)
            .where(col(HouseholdMember.beneficiary_id).in_(person_ids))
            .values(
                first_name=None,
                birth_date=case(
                    (birth_date.is_(None), None), else_=cast(_january_first(birth_date), Date)
                ),
            )
        )
        await self.conn.execute(
            delete(BudgetLine).where(col(BudgetLine.beneficiary_id).in_(person_ids))
        )
        await self.conn.execute(delete(Note).where(col(Note.beneficiary_id).in_(person_ids)))
        await self.conn.execute(
            update(Consent)
            .where(col(Consent.beneficiary_id).in_(person_ids))
            .values(purpose="", withdrawal_reason=None)
        )
        await self.conn.execute(
            update(AccessRequest)
            .where(col(AccessRequest.beneficiary_id).in_(person_ids))
            .values(reason="", decision_reason=None)
        )
        end_reason = col(CareTeamMembership.end_reason)
        await self.conn.execute(
            update(CareTeamMembership)
            .where(col(CareTeamMembership.beneficiary_id).in_(person_ids))
            .values(
                justification=None,
                # a code stays; any other reason is free text
                end_reason=case(
                    (end_reason.in_(sorted(CODED_END_REASONS)), end_reason),
                    else_=literal(None),
                ),
            )
        )


def _january_first(day: Mapped[date] | Mapped[date | None]) -> ColumnElement[date]:
    """The first of January of ``day``'s year: a birth date kept to the year."""
    return func.make_date(cast(extract("year", day), Integer), 1, 1)
