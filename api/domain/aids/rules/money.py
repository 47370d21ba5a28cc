"""Envelopes (a grantor's yearly budgets) and voucher numbers."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class EnvelopeKey:
    """An envelope item: one aid type, one category, or the year's whole budget (neither)."""

    category: str | None = None
    aid_code: str | None = None


def envelope_for(keys: Iterable[EnvelopeKey], aid_code: str, category: str) -> EnvelopeKey | None:
    """The envelope a request draws on: its aid type's, else its category's, else the
    year's whole budget, else none."""
    present = set(keys)
    for key in (EnvelopeKey(aid_code=aid_code), EnvelopeKey(category=category), EnvelopeKey()):
        if key in present:
            return key
    return None


@dataclass(frozen=True)
class EnvelopeFigures:
    amount: Decimal
    granted: Decimal
    paid: Decimal

    @property
    def remaining(self) -> Decimal:
        return self.amount - self.granted


@dataclass(frozen=True)
class RequestMoney:
    """A granted request's money: what was granted, paid (live payments) and cancelled."""

    granted: Decimal
    paid: Decimal = Decimal(0)
    cancelled: Decimal = Decimal(0)

    @property
    def committed(self) -> Decimal:
        """A cancelled voucher returns to the envelope: it is no longer committed."""
        return self.granted - self.cancelled

    @property
    def outstanding(self) -> Decimal:
        return self.granted - self.paid - self.cancelled


def envelope_figures(amount: Decimal, requests: Iterable[RequestMoney]) -> EnvelopeFigures:
    granted = Decimal(0)
    paid = Decimal(0)
    for r in requests:
        granted += r.committed
        paid += r.paid
    return EnvelopeFigures(amount=amount, granted=granted, paid=paid)


def voucher_number(year: int, sequence: int) -> str:
    return f"BA-{year}-{sequence:06d}"
