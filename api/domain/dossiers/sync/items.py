"""The items of a sync batch: each parsed and checked on its own, and what the sync knows of
it as it goes (:class:`Entry`)."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pydantic import ValidationError

from api.domain import clock
from api.domain.catalogue import LEGAL_AID_PRESTATIONS
from api.domain.dossiers.repository import StoredDossier
from api.domain.dossiers.rules import (
    Decision,
    DecisionValues,
    DossierStatus,
    Incoming,
    Plan,
    Stored,
    SyncOutcome,
)
from api.domain.dossiers.schemas import SyncItem
from api.domain.dossiers.service.context import Dossiers, decision_of
from api.domain.identity import check_birth_date, check_nir
from api.http.schemas import NUL_FREE
from api.problems import DomainError, FieldError, ValidationFailed

#: how far ahead of our clock a source's clock may be
CLOCK_TOLERANCE = timedelta(minutes=5)
SYNC_PURPOSE = "legal-aid dossier synchronisation"


@dataclass
class Entry:
    index: int
    item: SyncItem | None = None
    outcome: SyncOutcome | None = None
    problem: DomainError | None = None
    dossier_id: uuid.UUID | None = None
    #: the stored dossier (existing) and whether its reference must be recorded
    row: StoredDossier | None = None
    #: the item's digest (:func:`digest`), once asked: an item is settled by it, then it is
    #: kept on the item's reference when the item writes
    _digest: str | None = None
    link: bool = False
    plan: Plan | None = None
    # new dossiers
    person_id: uuid.UUID | None = None
    commune: str | None = None
    deciding_id: uuid.UUID | None = None
    #: the batch creates the person / the caller joins their care team for the prestation
    new_person: bool = False
    join: bool = False

    @property
    def pointer(self) -> str:
        return f"/items/{self.index}"

    @property
    def open(self) -> bool:
        return self.outcome is None

    def fail(self, problem: DomainError, outcome: SyncOutcome = SyncOutcome.ERROR) -> None:
        self.outcome, self.problem = outcome, problem

    def item_digest(self) -> str:
        assert self.item is not None
        if self._digest is None:
            self._digest = digest(self.item)
        return self._digest


def invalid(errors: list[FieldError]) -> ValidationFailed:
    return ValidationFailed(detail=errors[0].detail, errors=errors)


def _pointer(prefix: str, loc: Sequence[Any]) -> str:
    escaped = [str(p).replace("~", "~0").replace("/", "~1") for p in loc]
    return "/".join([prefix, *escaped])


def parse(entries: list[Entry], raw: Sequence[Any], *, nul_free: bool = False) -> None:
    """Each item validated on its own (``nul_free``: the body was seen to hold no NUL
    character, so its thousands of texts are not searched for one)."""
    context = NUL_FREE if nul_free else None
    for entry, value in zip(entries, raw, strict=True):
        try:
            entry.item = SyncItem.model_validate(value, context=context)
        except ValidationError as error:
            entry.fail(
                invalid(
                    [
                        FieldError(
                            _pointer(entry.pointer, e["loc"]),
                            "Unknown field." if e["type"] == "extra_forbidden" else e["msg"],
                        )
                        for e in error.errors()
                    ]
                )
            )


def incoming(item: SyncItem) -> Incoming:
    d = item.decision
    return Incoming(
        status=item.status,
        source_updated_at=item.source_updated_at,
        instruction=item.instruction.stored() if item.instruction is not None else None,
        decision=DecisionValues(
            decision=d.decision,
            amount=d.amount,
            start_on=d.start_on,
            end_on=d.end_on,
            reason=d.reason,
            decided_on=d.decided_on,
        )
        if d is not None
        else None,
    )


def digest(item: SyncItem) -> str:
    """What the item says of its dossier, hashed: two items with the same digest plan alike
    against the same stored dossier (the person's identity only matters to a new dossier;
    ``source_updated_at`` only when something differs)."""
    given = incoming(item)
    document = {
        "v": 1,
        "prestation": item.prestation,
        "beneficiary_id": item.beneficiary.id,
        "status": given.status,
        "instruction": given.instruction,
        "decision": given.decision,
    }
    text = json.dumps(document, sort_keys=True, default=_plain)
    return hashlib.sha256(text.encode()).hexdigest()


def _plain(value: Any) -> Any:
    if isinstance(value, DecisionValues):
        return {name: getattr(value, name) for name in value.__dataclass_fields__}
    return str(value)


def settled(before: Stored | None, changes: Mapping[str, Any]) -> Stored:
    """The dossier as a plan's ``changes`` leave it (``before``: a new dossier's none)."""

    def after(name: str, old: Any) -> Any:
        return changes.get(name, old)

    decision = after("decision", before.decision.decision if before and before.decision else None)
    old = before.decision if before is not None else None
    return Stored(
        status=DossierStatus(after("status", before.status if before else None)),
        instruction=after("instruction", before.instruction if before else {}),
        decision=DecisionValues(
            decision=Decision(decision),
            amount=after("amount", old.amount if old else None),
            start_on=after("start_on", old.start_on if old else None),
            end_on=after("end_on", old.end_on if old else None),
            reason=after("decision_reason", old.reason if old else None),
            decided_on=after("decided_on", old.decided_on if old else None),
        )
        if decision is not None
        else None,
        instruction_updated_at=after(
            "instruction_updated_at", before.instruction_updated_at if before else None
        ),
        decision_updated_at=after(
            "decision_updated_at", before.decision_updated_at if before else None
        ),
        status_changed_at=after("status_changed_at", before.status_changed_at if before else None),
    )


def stored(row: StoredDossier) -> Stored:
    return Stored(
        status=DossierStatus(row.status),
        instruction=row.instruction,
        decision=decision_of(row),
        instruction_updated_at=row.instruction_updated_at,
        decision_updated_at=row.decision_updated_at,
        status_changed_at=row.status_changed_at,
    )


async def check_items(ctx: Dossiers, entries: list[Entry]) -> None:
    catalogue = {r.code for r in await ctx.orgs.competences()} & LEGAL_AID_PRESTATIONS
    latest = clock.now() + CLOCK_TOLERANCE
    communes = {
        e.item.beneficiary.commune for e in entries if e.item and e.item.beneficiary.commune
    }
    known_communes = await ctx.orgs.existing_communes(sorted(communes)) if communes else set()
    seen: set[tuple[str, str]] = set()
    for e in entries:
        if e.item is None:
            continue
        item, p = e.item, e.pointer
        errors = []
        if item.prestation not in catalogue:
            errors.append(FieldError(f"{p}/prestation", "Not a legal-aid prestation."))
        if item.source_updated_at > latest:
            errors.append(FieldError(f"{p}/source_updated_at", "In the future."))
        person = item.beneficiary
        if person.nir:
            try:
                check_nir(person.nir)
            except ValidationFailed as error:
                errors += [FieldError(f"{p}/beneficiary/nir", x.detail) for x in error.errors]
        if person.birth_date:
            try:
                check_birth_date(person.birth_date, clock.today())
            except ValidationFailed as error:
                errors += [
                    FieldError(f"{p}/beneficiary{x.pointer}", x.detail) for x in error.errors
                ]
        if person.commune and person.commune not in known_communes:
            errors.append(FieldError(f"{p}/beneficiary/commune", "Unknown commune."))
        key = (item.external_ref.system, item.external_ref.id)
        if key in seen:
            errors.append(FieldError(f"{p}/external_ref", "Listed twice in this batch."))
        seen.add(key)
        if errors:
            e.fail(invalid(errors))
