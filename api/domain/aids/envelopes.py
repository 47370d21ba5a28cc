"""Envelopes (domain.md §10): the budget a board votes per year — per aid type, per category,
or for the whole year — with what was granted (committed), paid and what remains. The
figures are computed from the requests and payments at each read, so they are consistent
with them by construction; the amounts voted are replaced as a whole, under If-Match."""

from __future__ import annotations

import hashlib
import uuid
from collections import defaultdict

from api.auth.permissions import Action
from api.domain import clock
from api.domain.aids.deps import Aids
from api.domain.aids.rules.money import EnvelopeKey, RequestMoney, envelope_figures, envelope_for
from api.domain.aids.schemas import EnvelopeItemRead, EnvelopesPut, EnvelopesRead
from api.domain.aids.tables import AidEnvelope
from api.problems import FieldError, Forbidden, PreconditionFailed, ValidationFailed


def _etag(items: list[AidEnvelope]) -> str:
    spec = sorted(f"{e.category}|{e.aid_code}|{e.amount}" for e in items)
    return '"' + hashlib.sha256("\n".join(spec).encode()).hexdigest()[:16] + '"'


def _may_read(ctx: Aids) -> None:
    if not (
        ctx.scope.permits(Action.INSTRUCT_AIDS) or ctx.scope.permits(Action.MANAGE_AID_ENVELOPES)
    ):
        raise Forbidden(detail="Your role does not permit this action.")


async def read(ctx: Aids, year: int) -> tuple[EnvelopesRead, str]:
    _may_read(ctx)
    envelopes = await ctx.money.envelopes(year)
    keys = {EnvelopeKey(e.category, e.aid_code): e.amount for e in envelopes}
    drawn: dict[EnvelopeKey, list[RequestMoney]] = defaultdict(list)
    for line in await ctx.money.money_of_year(year):
        key = envelope_for(keys, line.aid_code, line.category)
        if key is not None:
            drawn[key].append(RequestMoney(line.granted, line.paid, line.cancelled))
    items = []
    for e in envelopes:
        figures = envelope_figures(e.amount, drawn[EnvelopeKey(e.category, e.aid_code)])
        items.append(
            EnvelopeItemRead(
                category=e.category,
                aid_code=e.aid_code,
                amount=figures.amount,
                granted=figures.granted,
                paid=figures.paid,
                remaining=figures.remaining,
            )
        )
    return EnvelopesRead(year=year, items=items), _etag(envelopes)


async def replace(
    ctx: Aids, year: int, body: EnvelopesPut, if_match: str
) -> tuple[EnvelopesRead, str]:
    ctx.scope.require(Action.MANAGE_AID_ENVELOPES)
    errors: list[FieldError] = []
    seen: set[EnvelopeKey] = set()
    for i, item in enumerate(body.items):
        if item.category is not None and item.aid_code is not None:
            errors.append(FieldError(f"/items/{i}", "Name a category or an aid code, not both."))
        key = EnvelopeKey(str(item.category) if item.category else None, item.aid_code)
        if key in seen:
            errors.append(FieldError(f"/items/{i}", "This envelope is listed twice."))
        seen.add(key)
    if errors:
        raise ValidationFailed(detail=errors[0].detail, errors=errors)
    await ctx.money.lock_year(year)
    current = await ctx.money.envelopes(year)
    if if_match != _etag(current):
        raise PreconditionFailed(detail="The envelopes changed since you read them.")
    now = clock.now()
    await ctx.money.replace_envelopes(
        year,
        [
            AidEnvelope(
                id=uuid.uuid4(),
                organisation_id=ctx.scope.organisation_id,
                year=year,
                category=str(item.category) if item.category else None,
                aid_code=item.aid_code,
                amount=item.amount,
                updated_at=now,
            )
            for item in body.items
        ],
    )
    await ctx.audit.record("aid_envelope.update", "aid_envelope", str(year))
    return await read(ctx, year)
