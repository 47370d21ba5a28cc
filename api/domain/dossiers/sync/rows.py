"""What the applied items write, grouped in units: the rows of each table, the audit entries
and the changes to announce."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from api.domain import clock
from api.domain.dossiers.repository import SYNCED_COLUMNS
from api.domain.dossiers.rules import (
    DossierStatus,
    Side,
    Stored,
    SyncOutcome,
    plan_update,
    sides_of,
)
from api.domain.dossiers.schemas import SyncItem
from api.domain.dossiers.service.context import Dossiers, actor, audience_of
from api.domain.dossiers.sync.items import Entry, incoming, settled, stored
from api.domain.identity import check_nir, name_match_keys
from api.domain.people.service import folded_names

SYNC_PURPOSE = "legal-aid dossier synchronisation"


@dataclass(frozen=True)
class Decider:
    """A dossier past ``draft`` whose deciding organisation must be in the care team."""

    beneficiary_id: uuid.UUID
    deciding_organisation_id: uuid.UUID
    prestation: str


@dataclass
class Unit:
    """Items written together: those sharing a person the batch creates or joins."""

    entries: list[Entry] = field(default_factory=list)
    people: list[dict[str, Any]] = field(default_factory=list)
    memberships: list[dict[str, Any]] = field(default_factory=list)
    dossiers: list[dict[str, Any]] = field(default_factory=list)
    refs: list[dict[str, Any]] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    deciders: list[Decider] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    # (action, resource type, resource id, person, purpose)
    audits: list[tuple[str, str, uuid.UUID, uuid.UUID, str | None]] = field(default_factory=list)
    changes: list[dict[str, Any]] = field(default_factory=list)
    #: (system, id, digest) of the references of the existing dossiers written
    digests: list[tuple[str, str, str]] = field(default_factory=list)


def _sex(item: SyncItem) -> str:
    if item.beneficiary.sex:
        return item.beneficiary.sex
    first = (item.beneficiary.nir or "").strip()[:1]
    return "M" if first in ("1", "3", "7") else "F" if first in ("2", "4", "8") else "X"


def units_of(ctx: Dossiers, entries: list[Entry]) -> list[Unit]:
    """Group the applied items into units and prepare every row they write."""
    units: list[Unit] = []
    by_person: dict[uuid.UUID, Unit] = {}
    for e in entries:
        if not e.open or e.plan is None:
            continue
        if e.row is None and (e.new_person or e.join):
            # items sharing a person the batch creates or joins stand or fall together
            assert e.person_id is not None
            unit = by_person.get(e.person_id)
            if unit is None:
                unit = by_person[e.person_id] = Unit()
                units.append(unit)
        else:
            unit = Unit()
            units.append(unit)
        unit.entries.append(e)
    now = clock.now()
    people: set[uuid.UUID] = set()
    joined: set[tuple[uuid.UUID, str]] = set()
    for unit in units:
        for e in unit.entries:
            if e.row is None:
                _new_dossier(ctx, e, unit, now, people, joined)
            else:
                _existing_dossier(ctx, e, unit, now)
    return units


def _ref(
    ctx: Dossiers,
    item: SyncItem,
    dossier: uuid.UUID,
    person: uuid.UUID,
    now: datetime,
    synced_digest: str | None,
) -> dict[str, Any]:
    return {
        "dossier_id": dossier,
        "beneficiary_id": person,
        "organisation_id": ctx.scope.organisation_id,
        "system": item.external_ref.system,
        "external_id": item.external_ref.id,
        "created_at": now,
        "synced_digest": synced_digest,
    }


def _digest_if_settled(e: Entry, before: Stored | None, sides: frozenset[Side]) -> str | None:
    """The item's digest, kept on its reference only if the same item planned again against
    the dossier it leaves is ``unchanged``: then a matching digest may answer the next
    re-sync without reading the dossier (api.domain.dossiers.sync.existing)."""
    assert e.item is not None and e.plan is not None
    again = plan_update(settled(before, e.plan.changes), incoming(e.item), sides, e.pointer)
    return e.item_digest() if again.outcome is SyncOutcome.UNCHANGED else None


def _existing_dossier(ctx: Dossiers, e: Entry, unit: Unit, now: datetime) -> None:
    assert e.item is not None and e.plan is not None and e.row is not None
    row, changes = e.row, e.plan.changes
    sides = sides_of(
        ctx.scope.organisation_id, row.instructing_organisation_id, row.deciding_organisation_id
    )
    synced = _digest_if_settled(e, stored(row), sides)
    if e.link:
        unit.refs.append(_ref(ctx, e.item, row.id, row.beneficiary_id, now, None))
    if synced is not None:
        # recorded after the batch's updates, which forget the digests of what they write
        unit.digests.append((e.item.external_ref.system, e.item.external_ref.id, synced))
    if changes:
        current = {name: getattr(row, name) for name in SYNCED_COLUMNS}
        unit.updates.append(
            {**current, **changes, "updated_at": now, "b_id": row.id, "b_version": row.version}
        )
    moved = "status" in changes
    unit.events.append(
        {
            "dossier_id": row.id,
            "beneficiary_id": row.beneficiary_id,
            "at": now,
            "action": "sync",
            "from_status": row.status if moved else None,
            "to_status": changes["status"] if moved else None,
            **actor(ctx.scope, "sync"),
        }
    )
    if any(step.target == DossierStatus.SUBMITTED for step in e.plan.steps):
        unit.deciders.append(
            Decider(row.beneficiary_id, row.deciding_organisation_id, row.prestation)
        )
    unit.audits.append(("dossier.sync_update", "dossier", row.id, row.beneficiary_id, None))
    unit.changes.append(
        {
            "type": "dossier",
            "resource_id": row.id,
            "action": "status_changed" if moved else "updated",
            "event": "dossier.status_changed" if moved else "dossier.updated",
            "audience": audience_of(row.instructing_organisation_id, row.deciding_organisation_id),
            "status": changes.get("status", row.status),
        }
    )


def _person_and_team(
    ctx: Dossiers,
    e: Entry,
    unit: Unit,
    now: datetime,
    people: set[uuid.UUID],
    joined: set[tuple[uuid.UUID, str]],
) -> None:
    """The person the batch creates and the caller's membership it joins, once per batch."""
    scope = ctx.scope
    assert e.item is not None and e.person_id is not None
    item, person_id = e.item, e.person_id
    if e.new_person and person_id not in people:
        people.add(person_id)
        unit.people.append(_person_row(ctx, item, person_id, e.commune, now))
        unit.audits.append(("beneficiary.sync_create", "beneficiary", person_id, person_id, None))
    if (e.new_person or e.join) and (person_id, item.prestation) not in joined:
        joined.add((person_id, item.prestation))
        unit.memberships.append(
            {
                "id": uuid.uuid4(),
                "beneficiary_id": person_id,
                "organisation_id": scope.organisation_id,
                "competence": item.prestation,
                "team_role": "member",
                "source": "sync",
                "justification": SYNC_PURPOSE if e.join else None,
                "started_at": now,
            }
        )
        if e.join:
            unit.audits.append(
                ("care_team.sync_join", "beneficiary", person_id, person_id, SYNC_PURPOSE)
            )


def _dossier_row(ctx: Dossiers, e: Entry, now: datetime) -> dict[str, Any]:
    """The new dossier, as the item's plan leaves it."""
    assert e.item is not None and e.plan is not None
    changes = e.plan.changes
    return {
        "id": e.dossier_id,
        "beneficiary_id": e.person_id,
        "prestation": e.item.prestation,
        "instructing_organisation_id": ctx.scope.organisation_id,
        "deciding_organisation_id": e.deciding_id,
        "status": changes["status"],
        "status_changed_at": changes["status_changed_at"],
        "instruction": changes["instruction"],
        "instruction_updated_at": changes["instruction_updated_at"],
        "decision": changes.get("decision"),
        "amount": changes.get("amount"),
        "start_on": changes.get("start_on"),
        "end_on": changes.get("end_on"),
        "decision_reason": changes.get("decision_reason"),
        "decided_on": changes.get("decided_on"),
        "decision_updated_at": changes.get("decision_updated_at"),
        "version": 1,
        "created_at": now,
        "updated_at": now,
    }


def _new_dossier(
    ctx: Dossiers,
    e: Entry,
    unit: Unit,
    now: datetime,
    people: set[uuid.UUID],
    joined: set[tuple[uuid.UUID, str]],
) -> None:
    scope = ctx.scope
    assert e.item is not None and e.plan is not None
    assert e.person_id is not None and e.dossier_id is not None and e.deciding_id is not None
    item, person_id, changes = e.item, e.person_id, e.plan.changes
    _person_and_team(ctx, e, unit, now, people, joined)
    unit.dossiers.append(_dossier_row(ctx, e, now))
    sides = sides_of(scope.organisation_id, scope.organisation_id, e.deciding_id)
    synced = _digest_if_settled(e, None, sides)
    unit.refs.append(_ref(ctx, item, e.dossier_id, person_id, now, synced))
    unit.events.append(
        {
            "dossier_id": e.dossier_id,
            "beneficiary_id": person_id,
            "at": now,
            "action": "create",
            "from_status": None,
            "to_status": changes["status"],
            **actor(ctx.scope, "sync"),
        }
    )
    if changes["status"] != DossierStatus.DRAFT:
        unit.deciders.append(Decider(person_id, e.deciding_id, item.prestation))
    unit.audits.append(("dossier.sync_create", "dossier", e.dossier_id, person_id, None))
    unit.changes.append(
        {
            "type": "dossier",
            "resource_id": e.dossier_id,
            "action": "created",
            "event": "dossier.created",
            "audience": audience_of(scope.organisation_id, e.deciding_id),
            "status": changes["status"],
        }
    )


def _person_row(
    ctx: Dossiers, item: SyncItem, person_id: uuid.UUID, commune: str | None, now: datetime
) -> dict[str, Any]:
    person = item.beneficiary
    assert person.birth_name and person.first_names and person.birth_date
    nir = check_nir(person.nir) if person.nir else None
    return {
        "id": person_id,
        "birth_name": person.birth_name,
        "usage_name": person.usage_name,
        "first_names": person.first_names,
        "birth_date": person.birth_date,
        "sex": _sex(item),
        "birth_place": None,
        "nir_cipher": ctx.people.nir.encrypt(nir) if nir else None,
        "nir_hash": ctx.people.nir.lookup_hash(nir) if nir else None,
        "nir_missing_reason": None if nir else "non transmis par le système d'information",
        "commune_code": commune,
        "domiciliation_organisation_id": None,
        "address": None,
        "phone": None,
        "email": None,
        "situation": None,
        "match_keys": sorted(
            name_match_keys(person.birth_name, person.usage_name, person.first_names)
        ),
        "folded_names": folded_names(person.birth_name, person.usage_name, person.first_names),
        "last_contact_at": now,
        "created_by_organisation_id": ctx.scope.organisation_id,
        "version": 1,
        "created_at": now,
        "updated_at": now,
    }
