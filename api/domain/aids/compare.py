"""Comparing règlements (domain.md §10): for a described household and a set of communes,
which aids each commune's organisations would grant, up to how much, and which rule stops
the others. Public, no personal data: one query for the aid types in force, then pure rules.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from api.domain import clock
from api.domain.aids.reglements import rule_of
from api.domain.aids.repository.reglements import RulesRepository
from api.domain.aids.rules.aid_types import AidTypeRule
from api.domain.aids.rules.comparison import offer
from api.domain.aids.rules.reste_a_vivre import consumption_units, reste_a_vivre
from api.domain.aids.schemas import AidRef, CompareBody, CompareItem, CompareRead
from api.problems import FieldError, ValidationFailed


async def _communes(repo: RulesRepository, body: CompareBody) -> list[str]:
    named = [n for n in ("communes", "epci", "departement") if getattr(body, n) is not None]
    if len(named) != 1:
        raise ValidationFailed(
            detail="Name the communes, an EPCI or a département (one of them).",
            errors=[FieldError("/communes", "Give exactly one of communes, epci, departement.")],
        )
    if body.communes is not None:
        known = await repo.known_communes(body.communes)
        unknown = [
            FieldError(f"/communes/{i}", f"No commune {c}.")
            for i, c in enumerate(body.communes)
            if c not in known
        ]
        if unknown:
            raise ValidationFailed(detail=unknown[0].detail, errors=unknown)
        return list(dict.fromkeys(body.communes))
    communes = await repo.communes_of(epci=body.epci, departement=body.departement)
    if not communes:
        pointer = "/epci" if body.epci is not None else "/departement"
        raise ValidationFailed(
            detail="No commune in this territory.", errors=[FieldError(pointer, "Unknown.")]
        )
    return communes


async def compare(repo: RulesRepository, body: CompareBody) -> CompareRead:
    communes = await _communes(repo, body)
    household = body.household
    uc = consumption_units(household.adults, household.children_ages)
    reste = reste_a_vivre(household.monthly_resources, household.monthly_charges, uc)
    on = body.on or clock.today()
    offers = await repo.offers(communes, on, str(body.category) if body.category else None)
    wanted = set(communes)
    # each aid type's verdict once, then spread over the communes it covers
    by_commune: dict[str, list[CompareItem]] = defaultdict(list)
    for aid, rules in offers:
        rule: AidTypeRule = rule_of(aid, rules)
        verdict = offer(rule, reste)
        ref = AidRef(code=aid.code, label=aid.label, category=aid.category)
        for commune in aid.communes:
            if commune in wanted:
                by_commune[commune].append(
                    CompareItem(
                        commune=commune,
                        organisation=aid.organisation_id,
                        rules_id=rules.id,
                        aid=ref,
                        eligible=verdict.eligible,
                        max_amount=verdict.max_amount,
                        failing_rules=list(verdict.failing_rules),
                    )
                )
    return CompareRead(
        reste_a_vivre_per_day_per_uc=reste,
        uc=uc.quantize(Decimal("0.01")),
        communes=len(communes),
        items=[item for commune in communes for item in by_commune.get(commune, [])],
    )
