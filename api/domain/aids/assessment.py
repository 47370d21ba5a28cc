"""The assessment stored at submission (domain.md §10): the household budget snapshotted (what
the record shows whatever changes later), reste à vivre per day per consumption unit, each
rule of the aid type with its figures, the household's 12-month history with this grantor,
and the required decision level."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from api.domain import clock
from api.domain.aids import access
from api.domain.aids.deps import Aids
from api.domain.aids.rules.aid_types import AidTypeRule
from api.domain.aids.rules.codes import CENT
from api.domain.aids.rules.eligibility import Assessment, History, assess
from api.domain.aids.rules.reste_a_vivre import ADULT_AGE, consumption_units, reste_a_vivre
from api.domain.aids.tables import AidRequest
from api.domain.catalogue import DataCategory
from api.problems import Forbidden

HISTORY_DAYS = 365


def age_on(birth: date, on: date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


async def history(ctx: Aids, request: AidRequest, on: date) -> History:
    """The household's aids granted by the request's grantor over the 12 months to ``on``."""
    lines = await ctx.requests.history(
        request.beneficiary_id, request.grantor_organisation_id, on - timedelta(days=HISTORY_DAYS)
    )
    same = [line for line in lines if line.aid_code == request.aid_code]
    return History(
        count=sum(line.requests for line in lines),
        amount=sum((line.amount for line in lines), Decimal(0)),
        same_type_count=sum(line.requests for line in same),
        same_type_amount=sum((line.amount for line in same), Decimal(0)),
    )


@dataclass(frozen=True)
class Snapshot:
    resources: Decimal
    charges: Decimal
    adults: int
    children_ages: list[int]
    stored: dict[str, Any]


async def snapshot(ctx: Aids, request: AidRequest) -> Snapshot:
    """The household budget as the instructor may read it now (its access must cover the
    person's household and resources for the aid's competence)."""
    probe = access.Record(uuid.uuid4(), request.beneficiary_id, request.competence)
    granted = (await access.categories(ctx.scope, ctx.people, [probe]))[probe.id]
    for needed in (DataCategory.RESOURCES, DataCategory.HOUSEHOLD):
        if needed not in granted:
            raise Forbidden(
                detail=f"Assessing the request needs the person's {needed.value}: "
                "your access does not cover it."
            )
    today = clock.today()
    person = await ctx.people.get(request.beneficiary_id)
    assert person is not None  # visible: the request was read through the same rule
    lines = await ctx.people.budget(request.beneficiary_id)
    members = await ctx.people.household(request.beneficiary_id)
    # the person, then the others; a member of unknown age counts as an adult
    ages: list[int | None] = [age_on(person.birth_date, today)]
    ages += [
        age_on(m.birth_date, today) if m.birth_date else None
        for m in members
        if m.relation != "demandeur"
    ]
    adults = sum(1 for a in ages if a is None or a >= ADULT_AGE)
    children = [a for a in ages if a is not None and a < ADULT_AGE]
    resources = sum((line.monthly_amount for line in lines if line.kind == "resource"), Decimal(0))
    charges = sum((line.monthly_amount for line in lines if line.kind == "charge"), Decimal(0))
    stored = {
        "resources": [
            {"type": line.type, "monthly_amount": str(line.monthly_amount)}
            for line in lines
            if line.kind == "resource"
        ],
        "charges": [
            {"type": line.type, "monthly_amount": str(line.monthly_amount)}
            for line in lines
            if line.kind == "charge"
        ],
        # ages and relations, never names
        "household": [{"age": a} for a in ages],
        "taken_on": today.isoformat(),
    }
    return Snapshot(resources, charges, max(adults, 0), children, stored)


async def assess_request(
    ctx: Aids, request: AidRequest, rule: AidTypeRule, person_commune: str | None
) -> tuple[Assessment, Snapshot]:
    taken = await snapshot(ctx, request)
    uc = consumption_units(taken.adults, taken.children_ages)
    reste = reste_a_vivre(taken.resources, taken.charges, uc)
    past = await history(ctx, request, clock.today())
    result = assess(
        rule,
        amount=request.amount_asked,
        form=request.form,
        reste=reste,
        uc=uc,
        history=past,
        residence_months=None,
    )
    return result, taken


def stored_assessment(result: Assessment, taken: Snapshot) -> dict[str, Any]:
    """The assessment as the request keeps it (and as the API shows it)."""
    return {
        "reste_a_vivre_per_day_per_uc": str(result.reste_a_vivre),
        "uc": str(result.uc.quantize(CENT)),
        "household_size": len(taken.stored["household"]),
        "monthly_resources": str(taken.resources),
        "monthly_charges": str(taken.charges),
        "checks": [{"rule": c.rule, "result": c.result, "detail": c.detail} for c in result.checks],
        "required_level": result.required_level.code,
        "history_12_months": {
            "count": result.history.count,
            "amount": str(result.history.amount.quantize(CENT)),
        },
    }
