"""How each table declares who may read its rows.

Every table class declares ``__scoping__``. A table that declares nothing fails at import
(:class:`api.db.base.Table`), and ``tests/store/test_row_level_security.py`` checks that
every table whose declaration ``requires_rls`` has row-level security enabled and forced.
The declaration documents and tests the boundary; it does not filter anything by itself: the
repositories write their scoped filters, and the policies in the migrations repeat them in
the database.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scoping:
    """Base of the scoping declarations."""

    #: whether the table must have row-level security enabled and forced
    requires_rls: bool = True


@dataclass(frozen=True)
class Public(Scoping):
    """Reference data readable by anyone: territories, competence catalogue, directory."""

    requires_rls: bool = False


@dataclass(frozen=True)
class OwnedByOrganisation(Scoping):
    """Rows belong to one organisation, named by ``column``."""

    column: str = "organisation_id"


@dataclass(frozen=True)
class SharedBetweenOrganisations(Scoping):
    """Rows shared by parties named in ``columns`` (e.g. grantor and grantee)."""

    columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class Internal(Scoping):
    """Bookkeeping the runtime role is never granted (set-up state): no RLS needed because
    no request can reach it."""

    requires_rls: bool = False


@dataclass(frozen=True)
class MemberOfOrganisation(Scoping):
    """People: visible to the organisations they are a member of (and to themselves)."""


@dataclass(frozen=True)
class AttachedToPerson(Scoping):
    """Personal data: visible to organisations attached to the person named by ``column``
    (an active care-team membership), per data category and competence (domain.md §7)."""

    column: str = "beneficiary_id"


@dataclass(frozen=True)
class Territorial(Scoping):
    """Anonymous aggregates' rows: visible to an organisation for the communes of its own
    territory, named by ``column`` (steering statistics, domain.md §12)."""

    column: str = "commune_code"
