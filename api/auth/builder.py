"""Builds the request's :class:`Scope`: the only place one is made.

The token proves who signed in and for which organisation; the database says what is true
*now*: the membership (or client) must still exist, its roles are read afresh, and the
holdings come from the territory and the conventions in force today. So removing a member,
revoking a client or ending a convention takes effect at the next request.

A process keeps the scopes it built (:data:`SCOPES`) under the access version it read
(api.db.versioned): the first round trip of every request sets the transaction's
identity and reads that version, and a scope is reused only when it is unchanged and built
for today, so the rule above holds as if nothing were cached.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace

from sqlalchemy.ext.asyncio import AsyncSession

from api.auth.permissions import (
    Action,
    Role,
    client_actions,
    client_categories,
    user_actions,
    user_categories,
)
from api.auth.principals import PrincipalStore
from api.auth.scope import ConventionGrantRef, PrincipalKind, Scope
from api.auth.tokens import AccessClaims
from api.db.context import DbContext, set_db_context
from api.db.versioned import VersionedCache
from api.domain import clock
from api.domain.catalogue import OrganisationKind
from api.problems import Unauthenticated


@dataclass(frozen=True)
class _Built:
    scope: Scope  # without the request's id and acting agent
    context: DbContext  # the transaction identity it needs
    clearance: bool  # the sensitive clearance the access rule reads (guichet.clearance)
    # may read statistics: stat_fact's read policy reads it (guichet.statistics), so the
    # permission table stays the one statement of who may
    statistics_reader: bool


#: the scopes this process built, by principal, organisation and day
SCOPES: VersionedCache[_Built] = VersionedCache()


async def build_scope(
    session: AsyncSession,
    claims: AccessClaims,
    *,
    request_id: str | None = None,
    acting_agent: str | None = None,
) -> Scope:
    """The scope of one of our access tokens."""
    try:
        principal_id = uuid.UUID(claims.sub)
    except ValueError:
        raise Unauthenticated(detail="Invalid access token") from None
    return await _scope(
        session,
        claims.kind,
        principal_id,
        claims.org,
        request_id=request_id,
        acting_agent=acting_agent,
    )


async def build_external_scope(
    session: AsyncSession,
    email: str,
    organisation_id: uuid.UUID | None,
    *,
    request_id: str | None = None,
) -> Scope:
    """The scope of a verified external OIDC token: the known user with that e-mail, in the
    organisation named by ``X-Organisation-Id`` (required when they belong to several)."""
    await set_db_context(session, context=DbContext.AUTH)
    store = PrincipalStore(session)
    user = await store.user_by_email(email)
    if user is None or user.disabled_at is not None:
        raise Unauthenticated(detail="No user of this service has this e-mail.")
    memberships = [
        m
        for m in await store.memberships_of(user.id)
        if organisation_id in (None, m.organisation_id)
    ]
    if len(memberships) != 1:
        raise Unauthenticated(
            detail="Name the organisation you act for with X-Organisation-Id."
            if memberships
            else "You are not a member of this organisation."
        )
    return await _scope(
        session, "user", user.id, memberships[0].organisation_id, request_id=request_id
    )


async def _scope(
    session: AsyncSession,
    principal_kind: str,
    principal_id: uuid.UUID,
    organisation_id: uuid.UUID,
    *,
    request_id: str | None,
    acting_agent: str | None = None,
) -> Scope:
    key = (principal_kind, principal_id, organisation_id, clock.today())
    hint = SCOPES.peek(key)
    await set_db_context(
        session,
        context=hint.context if hint is not None else DbContext.REQUEST,
        organisation_id=organisation_id,
        principal_id=principal_id,
        sensitive_clearance=hint.clearance if hint is not None else False,
        statistics_reader=hint.statistics_reader if hint is not None else False,
        read_version=True,
    )
    built = SCOPES.get(session, key)
    if built is None:
        built = await _build(session, principal_kind, principal_id, organisation_id)
        SCOPES.put(session, key, built)
    return replace(
        built.scope,
        request_id=request_id,
        acting_agent=acting_agent if principal_kind != "user" else None,
    )


async def _build(
    session: AsyncSession,
    principal_kind: str,
    principal_id: uuid.UUID,
    organisation_id: uuid.UUID,
) -> _Built:
    """The scope as the database says it is now (the transaction's identity set for it)."""
    context = DbContext.REQUEST
    await set_db_context(
        session, context=context, organisation_id=organisation_id, principal_id=principal_id
    )
    store = PrincipalStore(session)
    if principal_kind == "user":
        membership = await store.active_membership(principal_id, organisation_id)
        if membership is None:
            raise Unauthenticated(detail="This sign-in is no longer valid.")
        kind, roles, scopes = membership.kind, frozenset(membership.roles), frozenset[str]()
        actions, categories = user_actions(kind, roles), user_categories(kind, roles)
    else:
        client = await store.active_client(principal_id, organisation_id)
        if client is None:
            raise Unauthenticated(detail="This client is no longer valid.")
        kind, roles, scopes = client.kind, frozenset[str](), frozenset(client.scopes)
        actions, categories = client_actions(scopes), client_categories(scopes)
    platform = kind == OrganisationKind.PLATEFORME and Role.ADMIN in roles
    clearance = Role.SENSITIVE in roles
    statistics_reader = Action.READ_STATS in actions
    if platform or clearance or statistics_reader:
        context = DbContext.PLATFORM if platform else DbContext.REQUEST
        await set_db_context(
            session,
            context=context,
            organisation_id=organisation_id,
            principal_id=principal_id,
            sensitive_clearance=clearance,
            statistics_reader=statistics_reader,
        )
    holdings = await store.holdings(organisation_id, clock.today())
    scope = Scope(
        principal_kind=PrincipalKind(principal_kind),
        principal_id=principal_id,
        organisation_id=organisation_id,
        organisation_kind=kind,
        roles=roles,
        client_scopes=scopes,
        actions=actions,
        categories=categories,
        territory=frozenset(holdings.territory),
        law_competences=frozenset(holdings.law_competences),
        grants=tuple(
            ConventionGrantRef(conv, comps, communes) for conv, comps, communes in holdings.grants
        ),
    )
    return _Built(scope, context, clearance, statistics_reader)
