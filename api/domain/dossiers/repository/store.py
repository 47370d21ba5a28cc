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
    ColumnElement,
    Insert,
    Select,
    String,
    Table,
    Text,
    Update,
    and_,
    bindparam,
    delete,
    exists,
    func,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlmodel import col

from api.auth.scope import Scope
from api.db.base import core_table
from api.domain.dossiers.repository.rows import OwnRef, PersonEvent, PersonMatch, StoredDossier
from api.domain.dossiers.tables import Dossier, DossierEvent, DossierExternalRef
from api.domain.organisations.tables import Organisation, OrganisationCommune
from api.domain.people.tables import Beneficiary, CareTeamMembership
from api.domain.territories.tables import Competence

_dossier = core_table(Dossier)
_ref = core_table(DossierExternalRef)
_event = core_table(DossierEvent)
_person = core_table(Beneficiary)
_team = core_table(CareTeamMembership)
_org = core_table(Organisation)

#: the dossier columns a sync batch rewrites (one UPDATE from arrays: every row sets all of them)
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


#: an array column's values cross ``unnest`` as one text per row (``unnest`` flattens an
#: array of arrays), their elements joined by this separator, split again in SQL; codes and
#: folded name keys never contain it
_ARRAY_SEPARATOR = "\x1f"


def _insert_from_arrays(table: Table, columns: tuple[str, ...]) -> Insert:
    """``INSERT INTO table (columns) SELECT … FROM unnest(:p_<column>, …) WITH ORDINALITY``
    in list order: one statement and one execution for the whole batch, where an executemany
    runs the statement once per row. The values are bound as one array per column."""
    nested = {name for name in columns if isinstance(table.c[name].type, ARRAY)}
    arrays = [
        bindparam(f"p_{name}", type_=ARRAY(Text() if name in nested else table.c[name].type))
        for name in columns
    ]
    unnested = func.unnest(*arrays).table_valued(*columns, with_ordinality="n")
    given = unnested.render_derived(name="given")
    values = [
        func.string_to_array(given.c[name], _ARRAY_SEPARATOR) if name in nested else given.c[name]
        for name in columns
    ]
    return table.insert().from_select(list(columns), select(*values).order_by(given.c.n))


#: the statements, built once per (table, columns)
_INSERTS: dict[tuple[str, tuple[str, ...]], Insert] = {}


def _arrays(
    table: Table, columns: tuple[str, ...], rows: Sequence[Mapping[str, Any]]
) -> dict[str, list[Any]]:
    bound: dict[str, list[Any]] = {}
    for name in columns:
        values = [r[name] for r in rows]
        if isinstance(table.c[name].type, ARRAY):
            values = [None if v is None else _ARRAY_SEPARATOR.join(v) for v in values]
        bound[f"p_{name}"] = values
    return bound


# The caller's own references among (system, id) pairs: the pairs cross as two arrays joined
# to the unique index, instead of an IN list of a thousand row constructors.
_OWN_REFS_GIVEN = (
    func.unnest(
        bindparam("systems", type_=ARRAY(String())),
        bindparam("external_ids", type_=ARRAY(String())),
    )
    .table_valued("system", "external_id")
    .render_derived(name="given")
)


def _update_from_arrays() -> Update:
    """``UPDATE dossier … FROM unnest(…)``: the synced columns of many dossiers, each only if
    still at its version, in one statement (an executemany runs it once per row)."""
    names = ("b_id", "b_version", *(f"v_{name}" for name in SYNCED_COLUMNS))
    types = (
        _dossier.c.id.type,
        _dossier.c.version.type,
        *(_dossier.c[name].type for name in SYNCED_COLUMNS),
    )
    given = (
        func.unnest(*(bindparam(n, type_=ARRAY(t)) for n, t in zip(names, types, strict=True)))
        .table_valued(*names)
        .render_derived(name="given")
    )
    return (
        update(_dossier)
        .where(_dossier.c.id == given.c.b_id, _dossier.c.version == given.c.b_version)
        .values(
            {
                **{name: given.c[f"v_{name}"] for name in SYNCED_COLUMNS},
                "version": _dossier.c.version + 1,
            }
        )
    )


_UPDATE_FROM_ARRAYS = _update_from_arrays()


_RECORD_DIGESTS = text(
    """
UPDATE dossier_external_ref r SET synced_digest = given.digest
FROM unnest(CAST(:systems AS text[]), CAST(:external_ids AS text[]), CAST(:digests AS text[]))
  AS given(system, external_id, digest)
WHERE r.organisation_id = :organisation AND r.system = given.system
  AND r.external_id = given.external_id
"""
)


class DossierStore:
    def __init__(self, session: AsyncSession, scope: Scope) -> None:
        self.session = session
        self.scope = scope

    def _followed(self) -> ColumnElement[bool]:
        """The repository filter: the organisation follows the person for the prestation."""
        return exists().where(
            _team.c.beneficiary_id == _dossier.c.beneficiary_id,
            _team.c.competence == _dossier.c.prestation,
            _team.c.organisation_id == self.scope.organisation_id,
            _team.c.ended_at.is_(None),
        )

    def _select(self) -> Select[Any]:
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

    async def _dossiers(self, stmt: Select[Any]) -> list[StoredDossier]:
        return [StoredDossier(**row._mapping) for row in await self.session.execute(stmt)]

    # reads --------------------------------------------------------------------------------

    async def get(self, dossier_id: uuid.UUID, *, for_update: bool = False) -> StoredDossier | None:
        stmt = self._select().where(_dossier.c.id == dossier_id)
        if for_update:
            stmt = stmt.with_for_update(of=_dossier)
        found = await self._dossiers(stmt)
        return found[0] if found else None

    async def get_many(
        self, dossier_ids: Iterable[uuid.UUID], *, for_update: bool = False
    ) -> list[StoredDossier]:
        """In id order, so that concurrent batches lock rows in the same order."""
        ids = sorted(set(dossier_ids))
        if not ids:
            return []
        stmt = self._select().where(_dossier.c.id.in_(ids)).order_by(_dossier.c.id)
        if for_update:
            stmt = stmt.with_for_update(of=_dossier)
        return await self._dossiers(stmt)

    async def page(
        self,
        *,
        prestation: str | None,
        status: str | None,
        beneficiary_id: uuid.UUID | None,
        after: uuid.UUID | None,
        limit: int,
    ) -> list[StoredDossier]:
        stmt = self._select()
        if prestation:
            stmt = stmt.where(_dossier.c.prestation == prestation)
        if status:
            stmt = stmt.where(_dossier.c.status == status)
        if beneficiary_id:
            stmt = stmt.where(_dossier.c.beneficiary_id == beneficiary_id)
        if after is not None:
            stmt = stmt.where(_dossier.c.id > after)
        return await self._dossiers(stmt.order_by(_dossier.c.id).limit(limit + 1))

    async def refs(self, dossier_ids: Sequence[uuid.UUID]) -> list[DossierExternalRef]:
        stmt = (
            select(DossierExternalRef)
            .where(col(DossierExternalRef.dossier_id).in_(list(dossier_ids)))
            .order_by(col(DossierExternalRef.dossier_id), col(DossierExternalRef.id))
        )
        return list(await self.session.scalars(stmt))

    async def events(self, dossier_id: uuid.UUID) -> list[DossierEvent]:
        stmt = (
            select(DossierEvent)
            .where(col(DossierEvent.dossier_id) == dossier_id)
            .order_by(col(DossierEvent.id))
        )
        return list(await self.session.scalars(stmt))

    async def events_of_person(self, person_id: uuid.UUID) -> list[PersonEvent]:
        """Events of the person's dossiers for the prestations the caller follows them for,
        with each dossier's prestation and commune (the caller checks its holding)."""
        stmt = (
            select(
                DossierEvent,
                col(Dossier.prestation),
                col(Dossier.beneficiary_id),
                col(Beneficiary.commune_code),
            )
            .join(Dossier, col(Dossier.id) == col(DossierEvent.dossier_id))
            .join(Beneficiary, col(Beneficiary.id) == col(Dossier.beneficiary_id))
            .where(col(Dossier.beneficiary_id) == person_id, self._followed())
            .order_by(col(DossierEvent.id))
        )
        return [
            PersonEvent(event, prestation, person, commune)
            for event, prestation, person, commune in await self.session.execute(stmt)
        ]

    async def own_refs(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], OwnRef]:
        """The organisation's own references among these (system, id): read through the
        cheap branch of their policy (``organisation_id = guichet_org()``), never the
        dossiers'."""
        wanted = sorted(set(keys))
        if not wanted:
            return {}
        given = _OWN_REFS_GIVEN
        stmt = select(
            _ref.c.system,
            _ref.c.external_id,
            _ref.c.dossier_id,
            _ref.c.beneficiary_id,
            _ref.c.synced_digest,
        ).join(
            given,
            and_(
                _ref.c.organisation_id == self.scope.organisation_id,
                _ref.c.system == given.c.system,
                _ref.c.external_id == given.c.external_id,
            ),
        )
        rows = await self.session.execute(
            stmt,
            {"systems": [s for s, _ in wanted], "external_ids": [i for _, i in wanted]},
        )
        return {
            (system, external_id): OwnRef(dossier, person, digest)
            for system, external_id, dossier, person, digest in rows
        }

    async def legal_holders(
        self, prestations: Iterable[str], communes: Iterable[str]
    ) -> dict[tuple[str, str], list[uuid.UUID]]:
        """Who holds each prestation by law on each commune: the deciding organisation."""
        org, served = Organisation, OrganisationCommune
        stmt = (
            select(col(Competence.code), col(served.commune_code), col(org.id))
            .join(served, col(served.organisation_id) == col(org.id))
            .join(Competence, col(org.kind) == func.any(col(Competence.legal_holder_kinds)))
            .where(
                col(Competence.code).in_(sorted(set(prestations))),
                col(served.commune_code).in_(sorted(set(communes))),
            )
            .order_by(col(org.id))
        )
        found: dict[tuple[str, str], list[uuid.UUID]] = {}
        for code, commune, organisation in await self.session.execute(stmt):
            found.setdefault((code, commune), []).append(organisation)
        return found

    async def person_matches(
        self,
        index: Sequence[int],
        ids: Sequence[uuid.UUID | None],
        nir_hashes: Sequence[str | None],
        birth_dates: Sequence[date | None],
        communes: Sequence[str],
    ) -> list[PersonMatch]:
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
        return [PersonMatch(**row._mapping) for row in await self.session.execute(select(fn))]

    async def memberships(
        self, person_ids: Iterable[uuid.UUID], organisation_ids: Iterable[uuid.UUID]
    ) -> set[tuple[uuid.UUID, uuid.UUID, str]]:
        """Active (person, organisation, competence) memberships among these people's care
        teams (the caller is attached to them: row-level security shows their teams)."""
        people, orgs = sorted(set(person_ids)), sorted(set(organisation_ids))
        if not people or not orgs:
            return set()
        team = CareTeamMembership
        stmt = select(
            col(team.beneficiary_id), col(team.organisation_id), col(team.competence)
        ).where(
            col(team.beneficiary_id).in_(people),
            col(team.organisation_id).in_(orgs),
            col(team.ended_at).is_(None),
        )
        return {
            (person, org, competence)
            for person, org, competence in await self.session.execute(stmt)
        }

    # writes -------------------------------------------------------------------------------

    async def _insert(self, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
        """Every row in one statement (rows with the same keys), in list order."""
        if not rows:
            return
        columns = tuple(rows[0])
        assert all(tuple(r) == columns for r in rows), "rows of one insert share their keys"
        statement = _INSERTS.get((table.name, columns))
        if statement is None:
            statement = _INSERTS[(table.name, columns)] = _insert_from_arrays(table, columns)
        await self.session.execute(statement, _arrays(table, columns, rows))

    async def insert_people(self, rows: list[dict[str, Any]]) -> None:
        # no RETURNING: a row becomes readable only once its care-team membership exists
        await self._insert(_person, rows)

    async def join_teams(self, rows: list[dict[str, Any]]) -> None:
        await self._insert(_team, rows)

    async def insert_dossiers(self, rows: list[dict[str, Any]]) -> None:
        await self._insert(_dossier, rows)

    async def insert_refs(self, rows: list[dict[str, Any]]) -> None:
        await self._insert(_ref, rows)

    async def insert_events(self, rows: list[dict[str, Any]]) -> None:
        await self._insert(_event, rows)

    async def update(self, dossier_id: uuid.UUID, version: int, values: dict[str, Any]) -> bool:
        """Applied only if the row is still at ``version``: concurrent writers cannot both win."""
        stmt = (
            update(_dossier)
            .where(_dossier.c.id == dossier_id, _dossier.c.version == version, self._followed())
            .values(**values, version=_dossier.c.version + 1)
            .returning(_dossier.c.id)
        )
        return (await self.session.execute(stmt)).first() is not None

    async def update_many(self, rows: list[dict[str, Any]]) -> int:
        """One statement for the batch: each row holds ``b_id``, ``b_version`` and every column
        of :data:`SYNCED_COLUMNS`. Returns how many rows were written: fewer than given when a
        dossier moved out of reach or on (a row written is one still at its version, that
        row-level security lets the caller update). The rows are given in id order, the
        order concurrent batches lock them in, whether or not the caller locked them first."""
        if not rows:
            return 0
        rows = sorted(rows, key=lambda r: r["b_id"])
        bound = {
            "b_id": [r["b_id"] for r in rows],
            "b_version": [r["b_version"] for r in rows],
            **{f"v_{name}": [r[name] for r in rows] for name in SYNCED_COLUMNS},
        }
        result = await self.session.execute(_UPDATE_FROM_ARRAYS, bound)
        return int(getattr(result, "rowcount", 0))

    async def record_digests(self, rows: Sequence[tuple[str, str, str]]) -> None:
        """Record on the organisation's own references ``(system, id, digest)`` what its
        system's sync last wrote (after the batch's updates: a write to a dossier clears
        them, migration 0029)."""
        if not rows:
            return
        await self.session.execute(
            _RECORD_DIGESTS,
            {
                "organisation": self.scope.organisation_id,
                "systems": [system for system, _, _ in rows],
                "external_ids": [external_id for _, external_id, _ in rows],
                "digests": [digest for _, _, digest in rows],
            },
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
