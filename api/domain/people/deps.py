"""How routers get the people use cases: built from the request's scope and session (the one
wiring style of every noun), and the explicit list of a person's timeline sources."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from api.auth.deps import CurrentScope
from api.domain.aids import timeline as aid_timeline
from api.domain.audit.repository import AuditLog
from api.domain.dossiers import timeline as dossier_timeline
from api.domain.organisations.repository import OrganisationStore
from api.domain.orientations import timeline as orientation_timeline
from api.domain.people import timeline
from api.domain.people.access_requests import AccessRequests
from api.domain.people.repository import AccessRequestStore, PeopleStore
from api.domain.people.service import People
from api.domain.referrals import timeline as referral_timeline
from api.http.deps import Session


async def people_context(request: Request, scope: CurrentScope, session: Session) -> People:
    """The people use cases for one request (also the base of referrals and dossiers)."""
    return People(
        scope=scope,
        store=PeopleStore(session, scope),
        orgs=OrganisationStore(session),
        audit=AuditLog(session, scope),
        nir=request.app.state.nir_cipher,
    )


PeopleContext = Annotated[People, Depends(people_context)]


async def access_requests_context(
    people: PeopleContext, scope: CurrentScope, session: Session
) -> AccessRequests:
    """The access-request use cases for one request."""
    return AccessRequests(people=people, requests=AccessRequestStore(session, scope))


AccessRequestsContext = Annotated[AccessRequests, Depends(access_requests_context)]

#: every source of a person's timeline, each capability's named here (not registered by
#: importing its module)
TIMELINE_SOURCES: tuple[timeline.Source, ...] = (
    timeline.notes,
    timeline.care_team,
    timeline.consents,
    timeline.access_requests,
    referral_timeline.referral_events,
    orientation_timeline.orientation_events,
    dossier_timeline.dossier_events,
    aid_timeline.aid_events,
)
