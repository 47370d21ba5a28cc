"""The "who is competent" answer as it is presented (domain.md §4): holders, delegates first.

Who holds what is decided by the database (``convention_holdings``, ``guichet_holding``);
this module only orders the answer. The pure holding rules the tests compare against live in
``tests/oracle.py``, never here.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID


class HoldingSource(StrEnum):
    LAW = "law"
    CONVENTION = "convention"


@dataclass(frozen=True)
class Holder:
    """One line of the "who is competent" answer: an organisation and why it holds."""

    organisation_id: UUID
    name: str
    source: HoldingSource
    convention_id: UUID | None = None
    convention_reference: str | None = None


def _collation_key(name: str) -> str:
    decomposed = unicodedata.normalize("NFKD", name.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def order_holders(holders: Iterable[Holder]) -> list[Holder]:
    """Delegates (by convention) first, then legal holders; each group by name.

    Names compare without case or accents (``Écully`` sorts with ``E``); ties fall back to
    the exact name, the organisation id and the convention reference so the order is total.
    """
    return sorted(
        holders,
        key=lambda h: (
            h.source != HoldingSource.CONVENTION,
            _collation_key(h.name),
            h.name,
            str(h.organisation_id),
            h.convention_reference or "",
        ),
    )
