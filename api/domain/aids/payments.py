"""Payments of granted aid requests (domain.md §10): partial payments, creditor payees,
voucher numbers unique and gap-free per grantor and year, cancellation of an unused voucher
(its amount returns to the envelope, its number stays used), the accounting export."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import date
from decimal import Decimal

from api.auth.permissions import Action
from api.domain import clock
from api.domain.aids.decisions import rule_for
from api.domain.aids.deps import Aids
from api.domain.aids.requests import announce, event, visible
from api.domain.aids.rules.codes import VOUCHER_FORMS
from api.domain.aids.rules.lifecycle import AidAction, AidStatus, apply_action, sides_of
from api.domain.aids.rules.money import RequestMoney, voucher_number
from api.domain.aids.schemas import Payee, PaymentCreate, PaymentRead, check_payee
from api.domain.aids.tables import AidPayment
from api.problems import Conflict, FieldError, NotFound, ValidationFailed


def money_of(granted: Decimal, payments: list[AidPayment]) -> RequestMoney:
    return RequestMoney(
        granted=granted,
        paid=sum((p.amount for p in payments if p.cancelled_at is None), Decimal(0)),
        cancelled=sum((p.amount for p in payments if p.cancelled_at is not None), Decimal(0)),
    )


def shape(payment: AidPayment) -> PaymentRead:
    return PaymentRead(
        id=payment.id,
        request_id=payment.request_id,
        amount=payment.amount,
        form=payment.form,
        payee=Payee.model_validate(payment.payee),
        paid_on=payment.paid_on,
        voucher_number=payment.voucher_number,
        cancelled_at=payment.cancelled_at,
        created_at=payment.created_at,
    )


async def pay(ctx: Aids, request_id: uuid.UUID, body: PaymentCreate) -> PaymentRead:
    """One payment of a granted request, by its grantor; the last one that settles the
    amount granted moves the request to ``paid``."""
    row = await visible(ctx, request_id, for_update=True)
    request = row.request
    sides = sides_of(
        ctx.scope.organisation_id,
        request.instructing_organisation_id,
        request.grantor_organisation_id,
    )
    status = AidStatus(request.status)
    apply_action(status, AidAction.PAY, sides)  # 409 unless granted, 403 unless the grantor
    ctx.scope.require(Action.PAY_AIDS)
    rule = await rule_for(ctx, request)
    check_payee(body.payee, "/payee")
    if str(body.form) not in rule.forms:
        raise ValidationFailed(
            detail=f"{request.aid_code} is paid as {', '.join(sorted(rule.forms))}.",
            errors=[FieldError("/form", f"Not a form of {request.aid_code}.")],
        )
    money = money_of(request.amount_granted or Decimal(0), await ctx.money.payments_of(request.id))
    if body.amount > money.outstanding:
        raise Conflict(
            detail=f"{money.outstanding} remains to pay on this request.",
            errors=[FieldError("/amount", f"At most {money.outstanding}.")],
        )
    voucher = None
    if body.form in VOUCHER_FORMS:
        sequence = await ctx.money.next_voucher(body.paid_on.year)
        voucher = (body.paid_on.year, sequence)
    now = clock.now()
    payment = AidPayment(
        id=uuid.uuid4(),
        request_id=request.id,
        grantor_organisation_id=ctx.scope.organisation_id,
        amount=body.amount,
        form=str(body.form),
        payee=body.payee.model_dump(exclude_none=True),
        paid_on=body.paid_on,
        voucher_number=voucher_number(*voucher) if voucher else None,
        voucher_year=voucher[0] if voucher else None,
        voucher_sequence=voucher[1] if voucher else None,
        created_at=now,
        created_by_user_id=ctx.scope.user_id,
    )
    await ctx.money.add_payment(payment)
    settled = money.outstanding - body.amount == 0
    if settled:
        values = {"status": AidStatus.PAID, "status_changed_at": now, "updated_at": now}
        if not await ctx.requests.update(request.id, request.version, values):
            raise Conflict(detail="The aid request changed meanwhile; retry.")
    await ctx.requests.add_event(
        event(
            ctx.scope,
            request,
            "pay",
            from_status=status,
            to_status=AidStatus.PAID if settled else status,
            comment=payment.voucher_number,
        )
    )
    await ctx.audit.record(
        "aid_payment.create", "aid_payment", str(payment.id), beneficiary_id=request.beneficiary_id
    )
    await ctx.changes.record(
        type="aid_payment",
        resource_id=payment.id,
        action="created",
        event="aid_payment.created",
        audience=[request.grantor_organisation_id, request.instructing_organisation_id],
    )
    if settled:
        await announce(ctx, request, "status_changed", AidStatus.PAID)
    return shape(payment)


async def cancel(ctx: Aids, payment_id: uuid.UUID) -> PaymentRead:
    """An unused voucher (or a payment not made) is cancelled: its amount is no longer
    committed and returns to the envelope (it is not paid again on this request); its
    voucher number stays used."""
    payment = await ctx.money.payment(payment_id, for_update=True)
    if payment is None:
        raise NotFound(detail="No such payment.")
    ctx.scope.require(Action.PAY_AIDS)
    if payment.cancelled_at is not None:
        raise Conflict(detail="This payment is already cancelled.")
    now = clock.now()
    await ctx.money.cancel(payment.id, now)
    await ctx.audit.record("aid_payment.cancel", "aid_payment", str(payment.id))
    found = await ctx.money.payment(payment.id)
    assert found is not None
    return shape(found)


async def between(ctx: Aids, start: date | None, end: date | None) -> list[PaymentRead]:
    """The organisation's payments of a period, for its accountant."""
    ctx.scope.require(Action.PAY_AIDS)
    if start is not None and end is not None and end < start:
        raise ValidationFailed(
            detail="The period ends before it starts.",
            errors=[FieldError("/to", "Before from.", "query")],
        )
    payments = await ctx.money.payments_between(start, end)
    await ctx.audit.record("aid_payment.list", "aid_payment", None)
    return [shape(p) for p in payments]


CSV_COLUMNS = (
    "voucher_number",
    "paid_on",
    "amount",
    "form",
    "payee_kind",
    "payee_name",
    "payee_siret",
    "payee_reference",
    "request_id",
    "payment_id",
    "cancelled",
)


def _cell(text: str) -> str:
    """Spreadsheets run a cell starting with = + - @ as a formula: quote it."""
    return f"'{text}" if text[:1] in ("=", "+", "-", "@") else text


def as_csv(payments: list[PaymentRead]) -> str:
    """The accounting export: one line per payment, the person named by the request id only
    (a creditor by its name and SIRET)."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for p in payments:
        writer.writerow(
            (
                p.voucher_number or "",
                p.paid_on.isoformat(),
                f"{p.amount:.2f}",
                p.form,
                p.payee.kind,
                _cell(p.payee.name) if p.payee.kind == "creditor" and p.payee.name else "",
                p.payee.siret or "",
                _cell(p.payee.reference or ""),
                str(p.request_id),
                str(p.id),
                "oui" if p.cancelled_at else "non",
            )
        )
    return out.getvalue()
