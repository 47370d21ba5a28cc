"""Who a referral or an orientation may go to: a competence of the catalogue, held on the
person's commune (the directory), delegates first. Orientations ask the same."""

from __future__ import annotations

import uuid

from api.auth.scope import Scope
from api.domain import clock
from api.domain.holdings import Holder, HoldingSource, order_holders
from api.domain.organisations.repository import OrganisationStore
from api.problems import FieldError, Forbidden, ValidationFailed


async def check_competence(orgs: OrganisationStore, scope: Scope, competence: str) -> None:
    """A competence of the catalogue, and a sensitive one only with the clearance."""
    catalogue = {r.code: r for r in await orgs.competences()}
    known = catalogue.get(competence)
    if known is None:
        raise ValidationFailed(
            detail=f"Unknown competence {competence!r}.",
            errors=[FieldError("/competence", "Unknown competence.")],
        )
    if known.sensitive and not scope.has_sensitive_clearance:
        raise Forbidden(detail="This competence needs the sensitive clearance.")


async def holders(orgs: OrganisationStore, competence: str, commune: str) -> list[Holder]:
    """Who holds ``competence`` on ``commune`` today, delegates first (the directory)."""
    return order_holders(
        Holder(
            organisation_id=r.id,
            name=r.name,
            source=HoldingSource(r.source),
            convention_id=r.convention_id,
        )
        for r in await orgs.competent(competence, commune, clock.today())
    )


async def resolve_counterpart(
    orgs: OrganisationStore,
    *,
    competence: str,
    commune: str,
    named: uuid.UUID | None,
    excluded: set[uuid.UUID],
    pointer: str,
) -> uuid.UUID:
    """The partner named, if it holds the competence there, or the directory's first one."""
    competent = [h.organisation_id for h in await holders(orgs, competence, commune)]
    if named is not None:
        if named not in competent:
            raise ValidationFailed(
                detail=f"This partner does not hold {competence} on commune {commune}.",
                errors=[FieldError(pointer, f"Does not hold {competence} on {commune}.")],
            )
        if named in excluded:
            raise ValidationFailed(
                detail="Address another partner.",
                errors=[FieldError(pointer, "Not a partner you may address this to.")],
            )
        return named
    candidates = [h for h in competent if h not in excluded]
    if not candidates:
        raise ValidationFailed(
            detail=f"No other partner holds {competence} on commune {commune}.",
            errors=[FieldError("/competence", f"No competent partner on {commune}.")],
        )
    return candidates[0]
