"""The request's :class:`Scope`: who acts, for which organisation, with what rights, where.

Built once per request by :func:`api.auth.deps.current_scope` from a verified token and the
database (the membership or client must still exist: a removed member's token stops working
at the next request), frozen, and handed to every scoped repository. Holdings are read
fresh each request, so a revoked or expired convention stops granting anything at once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum

from api.auth.permissions import Action, Role
from api.domain.catalogue import DataCategory
from api.problems import Forbidden


class PrincipalKind(StrEnum):
    USER = "user"
    CLIENT = "client"


@dataclass(frozen=True)
class HoldingRef:
    competence: str
    commune: str
    source: str  # "law" | "convention"
    convention_id: uuid.UUID | None = None


@dataclass(frozen=True)
class ConventionGrantRef:
    convention_id: uuid.UUID
    competences: frozenset[str]
    communes: frozenset[str]


@dataclass(frozen=True)
class Scope:
    principal_kind: PrincipalKind
    principal_id: uuid.UUID
    organisation_id: uuid.UUID
    organisation_kind: str
    roles: frozenset[str]
    client_scopes: frozenset[str]
    actions: frozenset[Action]
    categories: frozenset[DataCategory]
    #: communes of the organisation's own territory
    territory: frozenset[str]
    #: competences its kind holds by law (on its whole territory)
    law_competences: frozenset[str]
    #: conventions in force today for the organisation: what each grants, where
    grants: tuple[ConventionGrantRef, ...] = ()
    acting_agent: str | None = None
    request_id: str | None = None

    def permits(self, action: Action) -> bool:
        return action in self.actions

    def require(self, action: Action) -> None:
        """Call only after the object was fetched through a scoped repository: a 403 must
        never confirm the existence of something the caller may not see."""
        if action not in self.actions:
            raise Forbidden(detail="Your role does not permit this action.")

    @property
    def user_id(self) -> uuid.UUID | None:
        """The signed-in person, or None for a machine client."""
        return self.principal_id if self.principal_kind is PrincipalKind.USER else None

    @property
    def client_id(self) -> uuid.UUID | None:
        return None if self.principal_kind is PrincipalKind.USER else self.principal_id

    @property
    def has_sensitive_clearance(self) -> bool:
        return Role.SENSITIVE in self.roles

    def holding(self, competence: str, commune: str) -> HoldingRef | None:
        """How the organisation holds ``competence`` on ``commune`` today, delegation first (by
        the convention of smallest id, as the access rule's ``guichet_holdings``)."""
        for grant in self.grants:
            if competence in grant.competences and commune in grant.communes:
                return HoldingRef(competence, commune, "convention", grant.convention_id)
        if competence in self.law_competences and commune in self.territory:
            return HoldingRef(competence, commune, "law")
        return None

    def holds(self, competence: str, commune: str) -> bool:
        return self.holding(competence, commune) is not None
