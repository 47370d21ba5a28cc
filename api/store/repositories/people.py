"""People and care teams, read through the request's scope (attachment), with row-level
security repeating the boundary; discovery goes through the preview functions only."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import Row, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth.scope import Scope
from api.store.tables import (
    AccessRequest,
    Beneficiary,
    BudgetLine,
    CareTeamMembership,
    Commune,
    Convention,
    HouseholdMember,
    Note,
    Organisation,
)

_person = Beneficiary.__table__  # type: ignore[attr-defined]
_team = CareTeamMembership.__table__  # type: ignore[attr-defined]
_commune = Commune.__table__  # type: ignore[attr-defined]
_org = Organisation.__table__  # type: ignore[attr-defined]
_convention = Convention.__table__  # type: ignore[attr-defined]
_household = HouseholdMember.__table__  # type: ignore[attr-defined]
_budget = BudgetLine.__table__  # type: ignore[attr-defined]
_note = Note.__table__  # type: ignore[attr-defined]

AnyRow = Row[tuple[Any, ...]]


class PeopleStore:
    def __init__(self, session: AsyncSession, scope: Scope) -> None:
        self.session = session
        self.scope = scope

    def _attached(self) -> Any:
        """The repository filter: an active membership of the scope's organisation."""
        return _person.c.id.in_(
            select(_team.c.beneficiary_id).where(
                _team.c.organisation_id == self.scope.organisation_id, _team.c.ended_at.is_(None)
            )
        )

    # discovery (previews only) --------------------------------------------------------

    async def candidates(self, nir_hash: str | None, birth_date: date) -> list[AnyRow]:
        fn = func.person_candidates(nir_hash, birth_date).table_valued(
            "id",
            "birth_name",
            "usage_name",
            "first_names",
            "birth_date",
            "commune_code",
            "match_keys",
            "folded_names",
            "nir_match",
        )
        return list((await self.session.execute(select(fn))).all())

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

    async def convention_categories(
        self, convention_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, list[str]]:
        stmt = select(_convention.c.id, _convention.c.data_categories).where(
            _convention.c.id.in_(list(convention_ids)),
            _convention.c.grantee_id == self.scope.organisation_id,
        )
        return {r.id: list(r.data_categories) for r in await self.session.execute(stmt)}


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
