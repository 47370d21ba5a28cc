"""Commission sessions (domain.md §10): a session of the grantor's board, its agenda of
scheduled requests, one decision per item recorded at the session (a bad item does not block
the others: each runs in its own savepoint and the report says what happened to it), the
closing, and minutes that name no one (request number, household composition, amounts,
decision, reason)."""

from __future__ import annotations

import csv
import html
import io
import uuid
from collections.abc import Sequence
from typing import Any

from api.auth.permissions import Action
from api.domain import clock
from api.domain.aids import decisions
from api.domain.aids.deps import Aids
from api.domain.aids.rules.lifecycle import AidAction
from api.domain.aids.rules.reste_a_vivre import ADULT_AGE
from api.domain.aids.schemas import (
    AdjournBody,
    AgendaItem,
    CommissionCreate,
    CommissionDecisionIn,
    CommissionDecisions,
    CommissionRead,
    DecisionOutcome,
    DecisionsReport,
    GrantBody,
    RefuseBody,
)
from api.domain.aids.tables import AidCommission, AidRequest
from api.problems import (
    Conflict,
    DomainError,
    FieldError,
    NotFound,
    ValidationFailed,
    problem_body,
)

OPEN, CLOSED = "open", "closed"


async def create(ctx: Aids, body: CommissionCreate) -> CommissionRead:
    ctx.scope.require(Action.INSTRUCT_AIDS)
    session = AidCommission(
        id=uuid.uuid4(),
        organisation_id=ctx.scope.organisation_id,
        meeting_on=body.date,
        body=body.body,
        status=OPEN,
        created_at=clock.now(),
    )
    await ctx.commissions.add(session)
    await ctx.audit.record("aid_commission.create", "aid_commission", str(session.id))
    return await read(ctx, session.id, audit=False)


async def _session(
    ctx: Aids, commission_id: uuid.UUID, *, for_update: bool = False
) -> AidCommission:
    found = await ctx.commissions.get(commission_id, for_update=for_update)
    if found is None:
        raise NotFound(detail="No such commission session.")
    return found


def _agenda(requests: Sequence[AidRequest]) -> list[AgendaItem]:
    return [
        AgendaItem(
            request_id=r.id,
            aid_code=r.aid_code,
            category=r.category,
            amount_asked=r.amount_asked,
            status=r.status,
            amount_granted=r.amount_granted,
            required_level=r.required_level,
            emergency=r.emergency,
        )
        for r in requests
    ]


async def read(ctx: Aids, commission_id: uuid.UUID, *, audit: bool = True) -> CommissionRead:
    session = await _session(ctx, commission_id)
    ctx.scope.require(Action.INSTRUCT_AIDS)
    agenda = await ctx.requests.in_commission(session.id)
    if audit:
        await ctx.audit.record("aid_commission.read", "aid_commission", str(session.id))
    return CommissionRead(
        id=session.id,
        organisation_id=session.organisation_id,
        date=session.meeting_on,
        body=session.body,
        status=session.status,
        closed_at=session.closed_at,
        agenda=_agenda(agenda),
    )


def _body_of(item: CommissionDecisionIn) -> tuple[AidAction, GrantBody | RefuseBody | AdjournBody]:
    if item.decision == "granted":
        if item.amount is None:
            raise ValidationFailed(
                detail="A grant names its amount.", errors=[FieldError("/amount", "Required.")]
            )
        return AidAction.GRANT, GrantBody(
            amount=item.amount, derogation=item.derogation, comment=item.comment
        )
    if item.decision == "refused":
        if item.reason_code is None:
            raise ValidationFailed(
                detail="A refusal names its reason code.",
                errors=[FieldError("/reason_code", "Required.")],
            )
        return AidAction.REFUSE, RefuseBody(reason_code=item.reason_code, comment=item.comment)
    return AidAction.ADJOURN, AdjournBody(comment=item.comment or "Ajourné en commission.")


async def _decide_one(
    ctx: Aids, session: AidCommission, index: int, item: CommissionDecisionIn
) -> DecisionOutcome:
    try:
        async with ctx.commissions.savepoint():
            row = await decisions.visible(ctx, item.request_id)
            if row.request.commission_id != session.id:
                raise Conflict(
                    detail="This request is not on this session's agenda.",
                    errors=[FieldError("/request_id", "Not on the agenda.")],
                )
            action, body = _body_of(item)
            found, _ = await decisions.act(
                ctx, item.request_id, action, body, None, commission_id=session.id
            )
    except DomainError as error:
        problem = problem_body(error, instance=f"/items/{index}", request_id=ctx.scope.request_id)
        return DecisionOutcome(
            index=index, request_id=item.request_id, outcome="error", problem=problem
        )
    return DecisionOutcome(
        index=index, request_id=item.request_id, outcome="recorded", status=found.status
    )


async def decide(ctx: Aids, commission_id: uuid.UUID, body: CommissionDecisions) -> DecisionsReport:
    session = await _session(ctx, commission_id, for_update=True)
    ctx.scope.require(Action.DECIDE)
    if session.status != OPEN:
        raise Conflict(detail="The session is closed.")
    return DecisionsReport(
        results=[await _decide_one(ctx, session, i, item) for i, item in enumerate(body.items)]
    )


async def close(ctx: Aids, commission_id: uuid.UUID) -> CommissionRead:
    session = await _session(ctx, commission_id, for_update=True)
    ctx.scope.require(Action.DECIDE)
    if session.status != OPEN:
        raise Conflict(detail="The session is already closed.")
    await ctx.commissions.close(session.id, clock.now())
    await ctx.audit.record("aid_commission.close", "aid_commission", str(session.id))
    return await read(ctx, session.id, audit=False)


# minutes --------------------------------------------------------------------------------------

MINUTES_COLUMNS = (
    "numero",
    "aide",
    "categorie",
    "foyer",
    "reste_a_vivre_jour_uc",
    "montant_demande",
    "decision",
    "montant_accorde",
    "motif",
    "derogation",
)


def household_words(snapshot: dict[str, Any] | None) -> str:
    """ "2 adultes, 2 enfants": the household's composition, never a name or an age."""
    if not snapshot:
        return ""
    ages = [m.get("age") for m in snapshot.get("household", [])]
    adults = sum(1 for a in ages if a is None or a >= ADULT_AGE)
    children = len(ages) - adults
    words = [f"{adults} adulte{'s' if adults > 1 else ''}"]
    if children:
        words.append(f"{children} enfant{'s' if children > 1 else ''}")
    return ", ".join(words)


def _size_words(size: int | None) -> str:
    """An anonymised request keeps its household size only."""
    return f"{size} personne{'s' if size > 1 else ''}" if size else ""


def minutes_rows(requests: Sequence[AidRequest]) -> list[tuple[str, ...]]:
    return [
        (
            str(r.id)[:8].upper(),
            r.aid_code,
            r.category,
            household_words(r.budget_snapshot) or _size_words(r.household_size),
            f"{r.reste_a_vivre:.2f}" if r.reste_a_vivre is not None else "",
            f"{r.amount_asked:.2f}",
            r.status,
            f"{r.amount_granted:.2f}" if r.amount_granted is not None else "",
            r.refusal_reason or "",
            "oui" if r.derogation else "non",
        )
        for r in requests
    ]


async def minutes(
    ctx: Aids, commission_id: uuid.UUID
) -> tuple[AidCommission, list[tuple[str, ...]]]:
    session = await _session(ctx, commission_id)
    ctx.scope.require(Action.INSTRUCT_AIDS)
    rows = minutes_rows(await ctx.requests.in_commission(session.id))
    # emergency grants since the last session are reported to this one
    since = await ctx.commissions.previous_meeting(session.meeting_on)
    reported = await ctx.requests.emergencies(since, session.meeting_on)
    rows += [(*row[:6], "granted (urgence)", *row[7:]) for row in minutes_rows(reported)]
    await ctx.audit.record("aid_commission.minutes", "aid_commission", str(session.id))
    return session, rows


def minutes_csv(rows: list[tuple[str, ...]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(MINUTES_COLUMNS)
    writer.writerows(rows)
    return out.getvalue()


def minutes_html(session: AidCommission, rows: list[tuple[str, ...]]) -> str:
    title = f"Procès-verbal — {session.body.replace('_', ' ')} du {session.meeting_on:%d/%m/%Y}"
    head = "".join(f"<th>{html.escape(c)}</th>" for c in MINUTES_COLUMNS)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in rows
    )
    state = "séance close" if session.status == CLOSED else "séance en cours"
    return (
        '<!doctype html><html lang="fr"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title></head><body>"
        f"<h1>{html.escape(title)}</h1><p>{state} — {len(rows)} dossier(s)</p>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></body></html>"
    )
