"""How the referrals router gets its use cases, built from the request's scope and session."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from api.auth.deps import CurrentScope
from api.domain.changes.repository import ChangeLog
from api.domain.people.deps import PeopleContext
from api.domain.referrals.repository import ReferralStore
from api.domain.referrals.service import Referrals
from api.http.deps import Session


async def referrals_context(
    scope: CurrentScope, session: Session, people: PeopleContext
) -> Referrals:
    return Referrals(
        scope=scope,
        store=ReferralStore(session, scope),
        orgs=people.orgs,
        people=people,
        audit=people.audit,
        changes=ChangeLog(session),
    )


ReferralsContext = Annotated[Referrals, Depends(referrals_context)]
