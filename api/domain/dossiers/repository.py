"""Legal-aid dossiers, read through the request's scope: a dossier is visible to the
organisations following its person for its prestation (the service then checks the holding
and the data categories); row-level security repeats the rule with
``guichet_can_see_dossier``. Sync batches are written in bulk: a few statements per batch,
never one round trip per item."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Row,
    and_,
    bindparam,
    delete,
    exists,
    func,
    insert,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from api.auth.scope import Scope
from api.db.tables import (
    Beneficiary,
    CareTeamMembership,
    Competence,
    Dossier,
    DossierEvent,
    DossierExternalRef,
    Organisation,
    OrganisationCommune,
)

AnyRow = Row[tuple[Any, ...]]

_dossier = Dossier.__table__  # type: ignore[attr-defined]
_ref = DossierExternalRef.__table__  # type: ignore[attr-defined]
_event = DossierEvent.__table__  # type: ignore[attr-defined]
_person = Beneficiary.__table__  # type: ignore[attr-defined]
_team = CareTeamMembership.__table__  # type: ignore[attr-defined]
_org = Organisation.__table__  # type: ignore[attr-defined]
_org_commune = OrganisationCommune.__table__  # type: ignore[attr-defined]
_competence = Competence.__table__  # type: ignore[attr-defined]

#: the dossier columns a sync batch rewrites (executemany: every row sets all of them)
SYNCED_COLUMNS = (
    "status",
    "status_changed_at",
    "instruction",
    "instruction_updated_at",
    "decision",
    "amount",
    "start_on",
    "end_on",
    "decision_reason",
    "decided_on",
    "decision_updated_at",
    "updated_at",
)


# ChangeLog.record for many changes in one statement: the same SQL function, once per row of
# the unnested arrays, in order (a sync batch announces up to 1,000 changes).
_ANNOUNCE = text(
    """
SELECT guichet_record_change(x.type, x.id, x.action, x.event, x.status,
                             array_remove(ARRAY[x.first, x.second], NULL), :at)
FROM unnest(CAST(:types AS text[]), CAST(:ids AS uuid[]), CAST(:actions AS text[]),
            CAST(:events AS text[]), CAST(:statuses AS text[]), CAST(:firsts AS uuid[]),
            CAST(:seconds AS uuid[])) WITH ORDINALITY
  AS x(type, id, action, event, status, first, second, n)
ORDER BY x.n
"""
)


class DossierStore:
    def __init__(self, session: AsyncSession, scope: Scope) -> None:
        self.session = session
        self.scope = scope

    def _followed(self) -> Any:
        """The repository filter: the organisation follows the person for the prestation."""
        return exists().where(
            _team.c.beneficiary_id == _dossier.c.beneficiary_id,
            _team.c.competence == _dossier.c.prestation,
            _team.c.organisation_id == self.scope.organisation_id,
            _team.c.ended_at.is_(None),
        )

    def _select(self) -> Any:
        instructing, deciding = aliased(_org), aliased(_org)
        return (
            select(
                _dossier,
                _person.c.commune_code,
                instructing.c.name.label("instructing_name"),
                instructing.c.kind.label("instructing_kind"),
                deciding.c.name.label("deciding_name"),
                deciding.c.kind.label("deciding_kind"),
            )
            .join(_person, _person.c.id == _dossier.c.beneficiary_id)
            .join(instructing, instructing.c.id == _dossier.c.instructing_organisation_id)
            .join(deciding, deciding.c.id == _dossier.c.deciding_organisation_id)
            .where(self._followed())
        )

    # reads --------------------------------------------------------------------------------

    async def get(self, dossier_id: uuid.UUID, *, for_update: bool = False) -> AnyRow | None:
        stmt = self._select().where(_dossier.c.id == dossier_id)
        if for_update:
            stmt = stmt.with_for_update(of=_dossier)
        return (await self.session.execute(stmt)).first()

    async def get_many(
        self, dossier_ids: Iterable[uuid.UUID], *, for_update: bool = False
    ) -> list[AnyRow]:
        """In id order, so that concurrent batches lock rows in the same order."""
        ids = sorted(set(dossier_ids))
        if not ids:
            return []
        stmt = self._select().where(_dossier.c.id.in_(ids)).order_by(_dossier.c.id)
        if for_update:
            stmt = stmt.with_for_update(of=_dossier)
        return list((await self.session.execute(stmt)).all())

    async def page(
        self,
        *,
        prestation: str | None,
        status: str | None,
        beneficiary_id: uuid.UUID | None,
        after: uuid.UUID | None,
        limit: int,
    ) -> list[AnyRow]:
        stmt = self._select()
        if prestation:
            stmt = stmt.where(_dossier.c.prestation == prestation)
        if status:
            stmt = stmt.where(_dossier.c.status == status)
        if beneficiary_id:
            stmt = stmt.where(_dossier.c.beneficiary_id == beneficiary_id)
        if after is not None:
            stmt = stmt.where(_dossier.c.id > after)
        stmt = stmt.order_by(_dossier.c.id).limit(limit + 1)
        return list((await self.session.execute(stmt)).all())

    async def versions(self, dossier_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, int]:
        ids = sorted(set(dossier_ids))
        if not ids:
            return {}
        stmt = select(_dossier.c.id, _dossier.c.version).where(_dossier.c.id.in_(ids))
        return {r.id: r.version for r in await self.session.execute(stmt)}

    async def refs(self, dossier_ids: Sequence[uuid.UUID]) -> list[AnyRow]:
        stmt = (
            select(_ref)
            .where(_ref.c.dossier_id.in_(list(dossier_ids)))
            .order_by(_ref.c.dossier_id, _ref.c.id)
        )
        return list((await self.session.execute(stmt)).all())

    async def events(self, dossier_id: uuid.UUID) -> list[AnyRow]:
        stmt = select(_event).where(_event.c.dossier_id == dossier_id).order_by(_event.c.id)
        return list((await self.session.execute(stmt)).all())

    async def events_of_person(self, person_id: uuid.UUID) -> list[AnyRow]:
        """Events of the person's dossiers for the prestations the caller follows them for,
        with each dossier's prestation and commune (the caller checks its holding)."""
        stmt = (
            select(
                _event,
                _dossier.c.prestation,
                _dossier.c.beneficiary_id.label("person_id"),
                _person.c.commune_code,
            )
            .join(_dossier, _dossier.c.id == _event.c.dossier_id)
            .join(_person, _person.c.id == _dossier.c.beneficiary_id)
            .where(_dossier.c.beneficiary_id == person_id, self._followed())
            .order_by(_event.c.id)
        )
        return list((await self.session.execute(stmt)).all())

    async def own_refs(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], uuid.UUID]:
        """The dossiers the organisation's own references name, by (system, id)."""
        wanted = sorted(set(keys))
        if not wanted:
            return {}
        stmt = select(_ref.c.system, _ref.c.external_id, _ref.c.dossier_id).where(
            _ref.c.organisation_id == self.scope.organisation_id,
            tuple_(_ref.c.system, _ref.c.external_id).in_(wanted),
        )
        return {(r.system, r.external_id): r.dossier_id for r in await self.session.execute(stmt)}

    async def legal_holders(
        self, prestations: Iterable[str], communes: Iterable[str]
    ) -> dict[tuple[str, str], list[uuid.UUID]]:
        """Who holds each prestation by law on each commune: the deciding organisation."""
        stmt = (
            select(_competence.c.code, _org_commune.c.commune_code, _org.c.id)
            .join(_org_commune, _org_commune.c.organisation_id == _org.c.id)
            .join(_competence, _org.c.kind == func.any(_competence.c.legal_holder_kinds))
            .where(
                _competence.c.code.in_(sorted(set(prestations))),
                _org_commune.c.commune_code.in_(sorted(set(communes))),
            )
            .order_by(_org.c.id)
        )
        found: dict[tuple[str, str], list[uuid.UUID]] = {}
        for r in await self.session.execute(stmt):
            found.setdefault((r.code, r.commune_code), []).append(r.id)
        return found

    async def person_matches(
        self,
        index: Sequence[int],
        ids: Sequence[uuid.UUID | None],
        nir_hashes: Sequence[str | None],
        birth_dates: Sequence[date | None],
        communes: Sequence[str],
    ) -> list[AnyRow]:
        fn = func.dossier_person_matches(
            list(index), list(ids), list(nir_hashes), list(birth_dates), list(communes)
        ).table_valued(
            "idx",
            "id",
            "commune_code",
            "match_keys",
            "folded_names",
            "by_id",
            "nir_match",
            "has_nir",
        )
        return list((await self.session.execute(select(fn))).all())

    async def memberships(
        self, person_ids: Iterable[uuid.UUID], organisation_ids: Iterable[uuid.UUID]
    ) -> set[tuple[uuid.UUID, uuid.UUID, str]]:
        """Active (person, organisation, competence) memberships among these people's care
        teams (the caller is attached to them: row-level security shows their teams)."""
        people, orgs = sorted(set(person_ids)), sorted(set(organisation_ids))
        if not people or not orgs:
            return set()
        stmt = select(_team.c.beneficiary_id, _team.c.organisation_id, _team.c.competence).where(
            _team.c.beneficiary_id.in_(people),
            _team.c.organisation_id.in_(orgs),
            _team.c.ended_at.is_(None),
        )
        return {(r[0], r[1], r[2]) for r in await self.session.execute(stmt)}

    # writes -------------------------------------------------------------------------------

    async def insert_people(self, rows: list[dict[str, Any]]) -> None:
        # no RETURNING: a row becomes readable only once its care-team membership exists
        if rows:
            await self.session.execute(insert(_person), rows)

    async def join_teams(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            await self.session.execute(insert(_team), rows)

    async def insert_dossiers(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            await self.session.execute(insert(_dossier), rows)

    async def insert_refs(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            await self.session.execute(insert(_ref), rows)

    async def insert_events(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            await self.session.execute(insert(_event), rows)

    async def update(self, dossier_id: uuid.UUID, version: int, values: dict[str, Any]) -> bool:
        """Applied only if the row is still at ``version``: concurrent writers cannot both win."""
        stmt = (
            update(_dossier)
            .where(_dossier.c.id == dossier_id, _dossier.c.version == version, self._followed())
            .values(**values, version=_dossier.c.version + 1)
            .returning(_dossier.c.id)
        )
        return (await self.session.execute(stmt)).first() is not None

    async def update_many(self, rows: list[dict[str, Any]]) -> None:
        """One executemany: each row holds ``b_id``, ``b_version`` and every column of
        :data:`SYNCED_COLUMNS` (the caller holds the rows' locks: versions cannot move)."""
        if not rows:
            return
        stmt = (
            update(_dossier)
            .where(
                and_(
                    _dossier.c.id == bindparam("b_id"),
                    _dossier.c.version == bindparam("b_version"),
                )
            )
            .values(
                {
                    **{name: bindparam(f"v_{name}") for name in SYNCED_COLUMNS},
                    "version": _dossier.c.version + 1,
                }
            )
        )
        await self.session.execute(
            stmt,
            [
                {
                    "b_id": r["b_id"],
                    "b_version": r["b_version"],
                    **{f"v_{name}": r[name] for name in SYNCED_COLUMNS},
                }
                for r in rows
            ],
        )

    async def announce(self, changes: Sequence[Mapping[str, Any]], at: datetime) -> None:
        """Announce changes like :meth:`ChangeLog.record` (same arguments), in one round trip;
        an audience names one or two organisations."""
        if not changes:
            return
        audiences = [list(dict.fromkeys(c["audience"])) for c in changes]
        assert all(1 <= len(a) <= 2 for a in audiences)
        await self.session.execute(
            _ANNOUNCE,
            {
                "types": [c["type"] for c in changes],
                "ids": [c["resource_id"] for c in changes],
                "actions": [c["action"] for c in changes],
                "events": [c["event"] for c in changes],
                "statuses": [c.get("status") for c in changes],
                "firsts": [a[0] for a in audiences],
                "seconds": [a[1] if len(a) > 1 else None for a in audiences],
                "at": at,
            },
        )

    async def replace_own_refs(
        self,
        dossier_id: uuid.UUID,
        beneficiary_id: uuid.UUID,
        refs: Sequence[tuple[str, str]],
        now: datetime,
    ) -> None:
        org = self.scope.organisation_id
        await self.session.execute(
            delete(_ref).where(_ref.c.dossier_id == dossier_id, _ref.c.organisation_id == org)
        )
        await self.insert_refs(
            [
                {
                    "dossier_id": dossier_id,
                    "beneficiary_id": beneficiary_id,
                    "organisation_id": org,
                    "system": system,
                    "external_id": external_id,
                    "created_at": now,
                }
                for system, external_id in refs
            ]
        )


__all__ = ["SYNCED_COLUMNS", "DossierStore"]
