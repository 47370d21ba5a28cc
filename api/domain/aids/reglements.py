"""Règlements (aid rules, ``/v1/aid-rules``): a granting organisation publishes versions of its
rules for the aids it grants; anyone reads them.

A version is in force from its ``valid_from`` until the next version starts (or its own
``valid_until``); a request is assessed and decided under the version in force on its
submission date, for ever — versions are never edited, only superseded.
"""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

from api.auth.permissions import Action
from api.auth.scope import Scope
from api.domain import clock
from api.domain.aids.repository.reglements import RulesRepository
from api.domain.aids.rules.aid_types import AidTypeRule, Tier, tier_errors
from api.domain.aids.rules.codes import DecisionLevel
from api.domain.aids.schemas import (
    AidRulesCreate,
    AidRulesRead,
    AidRulesSummary,
    AidTypeIn,
    AidTypeRead,
    TierRead,
)
from api.domain.aids.tables import AidRules, AidType
from api.http.schemas import Page, decode_keyset, encode_cursor
from api.problems import FieldError, NotFound, ValidationFailed


def tiers_of(decision: list[dict[str, str | None]]) -> tuple[Tier, ...]:
    return tuple(
        Tier(
            Decimal(t["up_to"]) if t["up_to"] is not None else None, DecisionLevel.of(str(t["by"]))
        )
        for t in decision
    )


def rule_of(aid: AidType, rules: AidRules) -> AidTypeRule:
    return AidTypeRule(
        code=aid.code,
        category=aid.category,
        forms=frozenset(aid.forms),
        max_per_request=aid.max_per_request,
        tiers=tiers_of(aid.decision),
        max_per_household_12_months=aid.max_per_household_12_months,
        max_requests_12_months=aid.max_requests_12_months,
        reste_a_vivre_max=aid.reste_a_vivre_max,
        residence_months_min=aid.residence_months_min,
        emergency_up_to=aid.emergency_up_to,
        rules_max_per_household_12_months=rules.max_per_household_12_months,
    )


def _aid_errors(scope: Scope, aid: AidTypeIn, here: str, known: set[str]) -> list[FieldError]:
    errors: list[FieldError] = []
    if aid.competence not in scope.law_competences:
        errors.append(
            FieldError(
                f"{here}/competence",
                f"Your organisation does not hold {aid.competence} by law: it may not grant it.",
            )
        )
    for j, commune in enumerate(aid.communes or []):
        if commune not in known:
            errors.append(FieldError(f"{here}/communes/{j}", f"No commune {commune}."))
        elif commune not in scope.territory:
            errors.append(
                FieldError(
                    f"{here}/communes/{j}",
                    f"Your organisation does not hold {aid.competence} on commune {commune}.",
                )
            )
    if len(set(aid.forms)) != len(aid.forms):
        errors.append(FieldError(f"{here}/forms", "A form is listed twice."))
    tiers = tuple(Tier(t.up_to, DecisionLevel.of(t.by)) for t in aid.decision)
    errors += tier_errors(tiers, f"{here}/decision")
    if aid.emergency_up_to is not None and aid.emergency_up_to > aid.max_per_request:
        errors.append(
            FieldError(
                f"{here}/emergency_up_to", "An emergency grant stays within max_per_request."
            )
        )
    return errors


async def publish(scope: Scope, repo: RulesRepository, body: AidRulesCreate) -> AidRulesRead:
    scope.require(Action.MANAGE_AID_RULES)
    errors: list[FieldError] = []
    if body.valid_until is not None and body.valid_until < body.valid_from:
        errors.append(FieldError("/valid_until", "Ends before it starts."))
    wanted = {c for aid in body.aids for c in aid.communes or []}
    known = await repo.known_communes(wanted) if wanted else set()
    codes: set[str] = set()
    for i, aid in enumerate(body.aids):
        if aid.code in codes:
            errors.append(FieldError(f"/aids/{i}/code", f"Aid code {aid.code} is listed twice."))
        codes.add(aid.code)
        errors += _aid_errors(scope, aid, f"/aids/{i}", known)
    if not errors and await repo.same_start(scope.organisation_id, body.valid_from):
        errors.append(FieldError("/valid_from", "A version of your règlement starts that day."))
    if errors:
        raise ValidationFailed(detail=errors[0].detail, errors=errors)
    now = clock.now()
    rules = AidRules(
        id=uuid.uuid4(),
        organisation_id=scope.organisation_id,
        title=body.title,
        valid_from=body.valid_from,
        valid_until=body.valid_until,
        max_per_household_12_months=body.max_per_household_12_months,
        created_at=now,
        created_by_user_id=scope.user_id,
    )
    types = [
        AidType(
            id=uuid.uuid4(),
            rules_id=rules.id,
            organisation_id=scope.organisation_id,
            position=i,
            code=aid.code,
            label=aid.label,
            competence=aid.competence,
            category=aid.category,
            forms=[str(f) for f in aid.forms],
            max_per_request=aid.max_per_request,
            max_per_household_12_months=aid.max_per_household_12_months,
            max_requests_12_months=aid.max_requests_12_months,
            reste_a_vivre_max=aid.reste_a_vivre_max,
            residence_months_min=aid.residence_months_min,
            # default: where the organisation holds the competence (by law: its territory)
            communes=sorted(aid.communes or scope.territory),
            decision=[
                {"up_to": str(t.up_to) if t.up_to is not None else None, "by": t.by}
                for t in aid.decision
            ],
            emergency_up_to=aid.emergency_up_to,
        )
        for i, aid in enumerate(body.aids)
    ]
    await repo.add(rules, types)
    return shape(rules, types)


def shape(rules: AidRules, types: list[AidType]) -> AidRulesRead:
    summary = AidRulesSummary.model_validate(rules, from_attributes=True)
    return AidRulesRead(
        **summary.model_dump(),
        max_per_household_12_months=rules.max_per_household_12_months,
        aids=[
            AidTypeRead.model_validate(
                {
                    **{k: getattr(t, k) for k in AidTypeRead.model_fields if k != "decision"},
                    "decision": [TierRead.model_validate(d) for d in t.decision],
                }
            )
            for t in types
        ],
    )


async def read(repo: RulesRepository, rules_id: uuid.UUID) -> AidRulesRead:
    rules = await repo.get(rules_id)
    if rules is None:
        raise NotFound(detail="No such règlement.")
    return shape(rules, await repo.types_of([rules.id]))


async def page(
    repo: RulesRepository,
    *,
    organisation_id: uuid.UUID | None,
    commune: str | None,
    on: date | None,
    cursor: str | None,
    limit: int,
) -> Page[AidRulesSummary]:
    position = decode_keyset(cursor, uuid.UUID)
    rows = await repo.page(
        organisation_id=organisation_id,
        commune=commune,
        on=on,
        after=position[0] if position else None,
        limit=limit,
    )
    shown = rows[:limit]
    return Page[AidRulesSummary](
        items=[AidRulesSummary.model_validate(r, from_attributes=True) for r in shown],
        next_cursor=encode_cursor([str(shown[-1].id)]) if len(rows) > limit else None,
    )
