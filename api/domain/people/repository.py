"""People and care teams, read through the request's scope (attachment), with row-level
security repeating the boundary; discovery goes through the preview functions only."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Date,
    Integer,
    Row,
    case,
    cast,
    delete,
    exists,
    extract,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from api.auth.scope import Scope
from api.db.tables import (
    AccessRequest,
    Beneficiary,
    BudgetLine,
    CareTeamMembership,
    Commune,
    Consent,
    Convention,
    HouseholdMember,
    Note,
    Organisation,
)
from api.problems import Conflict, FieldError, NotFound, ValidationFailed

_person = Beneficiary.__table__  # type: ignore[attr-defined]
_team = CareTeamMembership.__table__  # type: ignore[attr-defined]
_commune = Commune.__table__  # type: ignore[attr-defined]
_org = Organisation.__table__  # type: ignore[attr-defined]
_convention = Convention.__table__  # type: ignore[attr-defined]
_household = HouseholdMember.__table__  # type: ignore[attr-defined]
_budget = BudgetLine.__table__  # type: ignore[attr-defined]
_note = Note.__table__  # type: ignore[attr-defined]
_consent = Consent.__table__  # type: ignore[attr-defined]
_request = AccessRequest.__table__  # type: ignore[attr-defined]

AnyRow = Row[tuple[Any, ...]]


class PeopleStore:
    def __init__(self, session: AsyncSession, scope: Scope) -> None:
        self.session = session
        self.scope = scope

    def _attached(self) -> Any:
        """The repository filter: an active membership of the scope's organisation, asked of
        the same SQL probe the row-level policies use (``guichet_is_attached``)."""
        return func.guichet_is_attached(_person.c.id)

    # discovery (previews only) --------------------------------------------------------

    async def followers(self, ids: Sequence[uuid.UUID]) -> list[AnyRow]:
        fn = func.person_followers(list(ids)).table_valued(
            "beneficiary_id", "organisation_id", "organisation_name", "competence"
        )
        return list((await self.session.execute(select(fn))).all())

    async def commune_names(self, codes: Sequence[str]) -> dict[str, str]:
        rows = await self.session.execute(
            select(_commune.c.code, _commune.c.name).where(_commune.c.code.in_(list(codes)))
        )
        return {r.code: r.name for r in rows}

    # records --------------------------------------------------------------------------

    async def insert(self, values: dict[str, Any]) -> None:
        # no RETURNING: the row becomes readable only once its care-team membership exists
        await self.session.execute(insert(_person).values(**values))

    async def get(self, person_id: uuid.UUID) -> AnyRow | None:
        stmt = select(_person).where(_person.c.id == person_id, self._attached())
        return (await self.session.execute(stmt)).first()

    async def update(self, person_id: uuid.UUID, version: int, values: dict[str, Any]) -> bool:
        """Applied only if the row is still at ``version``: concurrent writers cannot both win."""
        stmt = (
            update(_person)
            .where(_person.c.id == person_id, _person.c.version == version, self._attached())
            .values(**values, version=_person.c.version + 1)
            .returning(_person.c.id)
        )
        return (await self.session.execute(stmt)).first() is not None

    async def attached_page(
        self,
        *,
        competence: str | None,
        commune: str | None,
        after: uuid.UUID | None,
        limit: int,
    ) -> list[AnyRow]:
        memberships = select(_team.c.beneficiary_id).where(
            _team.c.organisation_id == self.scope.organisation_id, _team.c.ended_at.is_(None)
        )
        if competence:
            memberships = memberships.where(_team.c.competence == competence)
        stmt = select(_person).where(
            _person.c.id.in_(memberships), _person.c.merged_into_id.is_(None)
        )
        if commune:
            stmt = stmt.where(_person.c.commune_code == commune)
        if after is not None:
            stmt = stmt.where(_person.c.id > after)
        return list(
            (await self.session.execute(stmt.order_by(_person.c.id).limit(limit + 1))).all()
        )

    # care team ------------------------------------------------------------------------

    async def team(self, person_id: uuid.UUID) -> list[AnyRow]:
        stmt = (
            select(
                _team,
                _org.c.name.label("organisation_name"),
                _org.c.kind.label("organisation_kind"),
            )
            .join(_org, _org.c.id == _team.c.organisation_id)
            .where(_team.c.beneficiary_id == person_id)
            .order_by(_team.c.started_at, _team.c.id)
        )
        return list((await self.session.execute(stmt)).all())

    async def own_memberships(self, person_ids: Sequence[uuid.UUID]) -> list[AnyRow]:
        stmt = select(_team).where(
            _team.c.beneficiary_id.in_(list(person_ids)),
            _team.c.organisation_id == self.scope.organisation_id,
            _team.c.ended_at.is_(None),
        )
        return list((await self.session.execute(stmt)).all())

    async def join(self, values: dict[str, Any]) -> None:
        await self.session.execute(insert(_team).values(**values))

    async def leave(self, membership_id: uuid.UUID, now: datetime, reason: str) -> AnyRow | None:
        stmt = (
            update(_team)
            .where(
                _team.c.id == membership_id,
                _team.c.organisation_id == self.scope.organisation_id,
                _team.c.ended_at.is_(None),
            )
            .values(ended_at=now, end_reason=reason)
            .returning(_team.c.beneficiary_id)
        )
        row: AnyRow | None = (await self.session.execute(stmt)).first()
        return row

    # household, budget, notes (the service checks categories; RLS checks attachment) --

    async def household(self, person_id: uuid.UUID) -> list[AnyRow]:
        stmt = (
            select(_household)
            .where(_household.c.beneficiary_id == person_id)
            .order_by(_household.c.id)
        )
        return list((await self.session.execute(stmt)).all())

    async def replace_household(self, person_id: uuid.UUID, members: list[dict[str, Any]]) -> None:
        await self.session.execute(
            delete(_household).where(_household.c.beneficiary_id == person_id)
        )
        named = {m["member_beneficiary_id"] for m in members} - {None}
        if named:
            # A member naming an id nobody here can read is bad input, not a database error.
            found = await self.session.scalars(select(_person.c.id).where(_person.c.id.in_(named)))
            unknown = named - set(found)
            if unknown:
                errors = [
                    FieldError(f"/members/{i}/beneficiary_id", "No such beneficiary.")
                    for i, m in enumerate(members)
                    if m["member_beneficiary_id"] in unknown
                ]
                raise ValidationFailed(detail=errors[0].detail, errors=errors)
        if members:
            await self.session.execute(insert(_household), members)

    async def budget(self, person_id: uuid.UUID) -> list[AnyRow]:
        stmt = (
            select(_budget)
            .where(_budget.c.beneficiary_id == person_id)
            .order_by(_budget.c.kind, _budget.c.type)
        )
        return list((await self.session.execute(stmt)).all())

    async def replace_budget(self, person_id: uuid.UUID, lines: list[dict[str, Any]]) -> None:
        await self.session.execute(delete(_budget).where(_budget.c.beneficiary_id == person_id))
        if lines:
            await self.session.execute(insert(_budget), lines)

    async def notes(self, person_id: uuid.UUID, competences: Sequence[str]) -> list[AnyRow]:
        """Notes of the person for competences the caller may read; RLS applies visibility."""
        stmt = (
            select(_note, _org.c.name.label("organisation_name"))
            .join(_org, _org.c.id == _note.c.organisation_id)
            .where(_note.c.beneficiary_id == person_id, _note.c.competence.in_(list(competences)))
            .order_by(_note.c.created_at.desc(), _note.c.id)
        )
        return list((await self.session.execute(stmt)).all())

    async def add_note(self, values: dict[str, Any]) -> None:
        await self.session.execute(insert(_note).values(**values))

    async def touch_contact(self, person_id: uuid.UUID, at: datetime) -> None:
        """The person came forward (consent given or withdrawn…): retention restarts."""
        await self.session.execute(
            update(_person)
            .where(_person.c.id == person_id, self._attached())
            .values(last_contact_at=func.greatest(_person.c.last_contact_at, at))
        )

    # consents (RLS: attachment) -------------------------------------------------------

    async def consents(self, person_id: uuid.UUID) -> list[AnyRow]:
        stmt = (
            select(_consent)
            .where(_consent.c.beneficiary_id == person_id)
            .order_by(_consent.c.created_at.desc(), _consent.c.id)
        )
        return list((await self.session.execute(stmt)).all())

    async def consent(
        self, person_id: uuid.UUID, consent_id: uuid.UUID, *, for_update: bool = False
    ) -> AnyRow | None:
        stmt = select(_consent).where(
            _consent.c.id == consent_id, _consent.c.beneficiary_id == person_id
        )
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).first()

    async def add_consent(self, values: dict[str, Any]) -> None:
        await self.session.execute(insert(_consent).values(**values))

    async def withdraw_consent(self, consent_id: uuid.UUID, values: dict[str, Any]) -> None:
        await self.session.execute(
            update(_consent).where(_consent.c.id == consent_id).values(**values)
        )

    async def access_requests(self, person_id: uuid.UUID) -> list[AnyRow]:
        """The person's access requests the scope may see (its own, or all once attached)."""
        stmt = select(_request).where(_request.c.beneficiary_id == person_id)
        return list((await self.session.execute(stmt)).all())

    # merges and right of access (SECURITY DEFINER: they reach every table) ---------------

    async def merged_into(self, person_id: uuid.UUID) -> uuid.UUID | None:
        found: uuid.UUID | None = await self.session.scalar(
            select(func.person_merged_into(person_id))
        )
        return found

    async def merge(
        self, survivor_id: uuid.UUID, duplicate_id: uuid.UUID, now: datetime
    ) -> list[AnyRow]:
        """Re-point every row referring to the duplicate; (table, column, moved) per column."""
        fn = func.merge_beneficiaries(survivor_id, duplicate_id, now).table_valued(
            "table_name", "column_name", "moved"
        )
        try:
            async with self.session.begin_nested():  # the error below leaves it usable
                return list((await self.session.execute(select(fn))).all())
        except DBAPIError as error:
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
            raise


__all__ = ["PeopleStore"]


async def locate_person(session: AsyncSession, person_id: uuid.UUID) -> tuple[bool, str | None]:
    """Whether the person exists and their commune, without reading their record."""
    fn = func.person_locator(person_id).table_valued("commune_code")
    row = (await session.execute(select(fn))).first()
    return (row is not None, row.commune_code if row else None)


class AccessRequestStore:
    """Requests the scope's organisation sent (outbox) or may decide (inbox: it is attached)."""

    def __init__(self, session: AsyncSession, scope: Scope) -> None:
        self.session = session
        self.scope = scope
        self._table = AccessRequest.__table__  # type: ignore[attr-defined]

    async def add(self, values: dict[str, Any]) -> None:
        await self.session.execute(insert(self._table).values(**values))

    async def get(self, request_id: uuid.UUID, *, for_update: bool = False) -> AnyRow | None:
        t = self._table
        stmt = select(t).where(t.c.id == request_id, self._visible())
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).first()

    def _visible(self) -> Any:
        t = self._table
        org = self.scope.organisation_id
        attached = select(_team.c.beneficiary_id).where(
            _team.c.organisation_id == org, _team.c.ended_at.is_(None)
        )
        return (t.c.organisation_id == org) | t.c.beneficiary_id.in_(attached)

    async def box(
        self, box: str, status: str | None, after: uuid.UUID | None, limit: int
    ) -> list[AnyRow]:
        t = self._table
        org = self.scope.organisation_id
        stmt = select(t).where(self._visible())
        stmt = (
            stmt.where(t.c.organisation_id == org)
            if box == "outbox"
            else stmt.where(t.c.organisation_id != org)
        )
        if status:
            stmt = stmt.where(t.c.status == status)
        if after is not None:
            stmt = stmt.where(t.c.id > after)
        return list((await self.session.execute(stmt.order_by(t.c.id).limit(limit + 1))).all())

    async def decide(self, request_id: uuid.UUID, values: dict[str, Any]) -> None:
        t = self._table
        await self.session.execute(update(t).where(t.c.id == request_id).values(**values))


# retention (run as the owner by the purge: api.domain.people.retention) ---------------------

# first half of the two-key advisory lock held by a running purge (see api.domain.audit.repository
# for the other namespaces)
_PURGE_LOCK = (0x50555247, 0)  # "PURG"


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

    @staticmethod
    def _expires() -> Any:
        contact = func.coalesce(_person.c.last_contact_at, _person.c.created_at)
        return contact + func.make_interval(0, _org.c.retention_months)

    async def detach_expired(self, now: datetime) -> list[AnyRow]:
        """End the memberships whose organisation's retention has passed since the
        person's last contact; (membership id, person, organisation) of each."""
        stmt = (
            update(_team)
            .where(
                _team.c.ended_at.is_(None),
                _team.c.beneficiary_id == _person.c.id,
                _team.c.organisation_id == _org.c.id,
                self._expires() <= now,
            )
            .values(ended_at=now, end_reason="retention")
            .returning(_team.c.id, _team.c.beneficiary_id, _team.c.organisation_id)
        )
        return list((await self.conn.execute(stmt)).all())

    async def due_within(self, now: datetime, until: datetime) -> dict[uuid.UUID, int]:
        """Per organisation, how many of its memberships the purge will end by ``until``."""
        expires = self._expires()
        stmt = (
            select(_team.c.organisation_id, func.count().label("due"))
            .select_from(_team)
            .join(_person, _person.c.id == _team.c.beneficiary_id)
            .join(_org, _org.c.id == _team.c.organisation_id)
            .where(_team.c.ended_at.is_(None), expires > now, expires <= until)
            .group_by(_team.c.organisation_id)
        )
        return {r.organisation_id: int(r.due) for r in await self.conn.execute(stmt)}

    async def anonymisable(self, now: datetime, quiet_since: datetime) -> list[uuid.UUID]:
        """People no organisation follows any more, not yet anonymised: the last one left
        through retention, or nothing happened to their record since ``quiet_since``."""
        active = exists().where(_team.c.beneficiary_id == _person.c.id, _team.c.ended_at.is_(None))
        any_ = _team.alias("any_membership")
        last_left = (
            select(func.max(any_.c.ended_at))
            .where(any_.c.beneficiary_id == _person.c.id)
            .correlate(_person)
            .scalar_subquery()
        )
        last = _team.alias("last_membership")
        retained = (
            select(last.c.id)
            .where(
                last.c.beneficiary_id == _person.c.id,
                last.c.end_reason == "retention",
                last.c.ended_at == last_left,
            )
            .correlate(_person)
            .exists()
        )
        stmt = (
            select(_person.c.id)
            .where(
                _person.c.anonymised_at.is_(None),
                ~active,
                or_(
                    retained,
                    func.greatest(last_left, _person.c.updated_at) <= quiet_since,
                ),
            )
            .order_by(_person.c.id)
        )
        return list((await self.conn.execute(stmt)).scalars())

    async def anonymise(self, ids: Sequence[uuid.UUID], now: datetime) -> list[uuid.UUID]:
        """Clear identity, contact, NIR, situation and free text; keep ids, the birth year,
        the commune and the rows statistics count. Skips anyone followed again or already
        anonymised; returns who was anonymised."""
        january_first = func.make_date(cast(extract("year", _person.c.birth_date), Integer), 1, 1)
        active = exists().where(_team.c.beneficiary_id == _person.c.id, _team.c.ended_at.is_(None))
        done = await self.conn.execute(
            update(_person)
            .where(_person.c.id.in_(list(ids)), _person.c.anonymised_at.is_(None), ~active)
            .values(
                birth_name="",
                usage_name=None,
                first_names="",
                birth_date=january_first,
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
                version=_person.c.version + 1,
                updated_at=now,
            )
            .returning(_person.c.id)
        )
        person_ids = list(done.scalars())
        if not person_ids:
            return []
        member_year = func.make_date(cast(extract("year", _household.c.birth_date), Integer), 1, 1)
        await self.conn.execute(
            update(_household)
            .where(_household.c.beneficiary_id.in_(person_ids))
            .values(
                first_name=None,
                birth_date=case(
                    (_household.c.birth_date.is_(None), None), else_=cast(member_year, Date)
                ),
            )
        )
        await self.conn.execute(delete(_budget).where(_budget.c.beneficiary_id.in_(person_ids)))
        await self.conn.execute(delete(_note).where(_note.c.beneficiary_id.in_(person_ids)))
        await self.conn.execute(
            update(_consent)
            .where(_consent.c.beneficiary_id.in_(person_ids))
            .values(purpose="", withdrawal_reason=None)
        )
        await self.conn.execute(
            update(_request)
            .where(_request.c.beneficiary_id.in_(person_ids))
            .values(reason="", decision_reason=None)
        )
        await self.conn.execute(
            update(_team)
            .where(_team.c.beneficiary_id.in_(person_ids))
            .values(
                justification=None,
                end_reason=case(
                    (_team.c.end_reason.in_(["retention", "merged"]), _team.c.end_reason),
                    else_=literal(None),
                ),
            )
        )
        return person_ids
