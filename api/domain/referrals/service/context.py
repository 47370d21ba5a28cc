"""What every referral use case starts from: the request's context, and the referral as the
caller may see it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from api.auth.scope import Scope
from api.domain.audit.repository import AuditLog
from api.domain.catalogue import DataCategory
from api.domain.changes.repository import ChangeLog
from api.domain.organisations.repository import OrganisationStore
from api.domain.people.service import People
from api.domain.referrals.repository import PartiesOfReferral, ReferralStore
from api.domain.referrals.rules import ReferralSide
from api.domain.referrals.tables import Referral
from api.problems import Forbidden, NotFound


@dataclass(frozen=True)
class Referrals:
    """What the use cases need, built by ``deps.py`` for one request."""

    scope: Scope
    store: ReferralStore
    orgs: OrganisationStore
    people: People
    audit: AuditLog
    changes: ChangeLog


def etag(version: int) -> str:
    return f'"{version}"'


def side_of(scope: Scope, referral: Referral) -> ReferralSide | None:
    if referral.recipient_organisation_id == scope.organisation_id:
        return ReferralSide.RECIPIENT
    if referral.sender_organisation_id == scope.organisation_id:
        return ReferralSide.SENDER
    return None  # the partner that redirected it: it follows the chain, it does not act


def require_referrals(scope: Scope) -> None:
    if DataCategory.REFERRALS not in scope.categories:
        raise Forbidden(detail="Your role does not cover referrals.")


async def hidden_competences(ctx: Referrals) -> frozenset[str]:
    """Sensitive competences (ase, violences) a caller without the clearance never sees a
    referral of, even as a party's member."""
    if ctx.scope.has_sensitive_clearance:
        return frozenset()
    return await ctx.orgs.sensitive_competences()


async def visible_referral(
    ctx: Referrals, referral_id: uuid.UUID, *, for_update: bool = False
) -> PartiesOfReferral:
    """The referral if the caller's organisation is a party (404 otherwise), and the caller's
    role reads referrals (403 otherwise: an admin or a dpo of a party)."""
    return await shown(ctx, await ctx.store.get(referral_id, for_update=for_update))


async def shown(ctx: Referrals, found: PartiesOfReferral | None) -> PartiesOfReferral:
    """A referral read with its parties (None: the caller's organisation is no party), if the
    caller may see it: 404 for a competence hidden from it, 403 for a role that does not
    read referrals."""
    if found is None or found.referral.competence in await hidden_competences(ctx):
        raise NotFound(detail="No such referral.")
    require_referrals(ctx.scope)
    return found
