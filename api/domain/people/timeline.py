"""A person's timeline: what the caller may see of their file, newest first.

The timeline reads *sources*: async functions that receive a
:class:`TimelineQuery` (the person, the caller's scope and categories, the competences it
follows the person for) and return :class:`~api.domain.people.rules.Event` values — ids and
codes, never free text. Each source applies its own visibility rule (a note's visibility,
a category); the timeline then drops what a sensitive competence hides from the caller,
merges, orders and pages. A capability adds its records by naming its source in
``TIMELINE_SOURCES`` (``api.domain.people.deps``), beside the others: no registration by
importing a module."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, time

from sqlalchemy.ext.asyncio import AsyncSession

from api.auth.scope import Scope
from api.domain.catalogue import DataCategory
from api.domain.clock import PARIS
from api.domain.people import rules
from api.domain.people.repository import PeopleStore
from api.domain.people.rules import Event
from api.domain.people.schemas import TimelineItem
from api.domain.people.service import People, note_competences, visible_person
from api.http.schemas import Page, as_instant, as_text, decode_keyset, encode_cursor


@dataclass(frozen=True)
class TimelineQuery:
    session: AsyncSession
    scope: Scope
    person_id: uuid.UUID
    #: what the caller may read of the person (role ∩ attachment)
    categories: frozenset[DataCategory]
    #: competences the caller's organisation follows the person for and still holds there
    competences: frozenset[str]
    #: the catalogue's sensitive competences
    sensitive: frozenset[str]


Source = Callable[[TimelineQuery], Awaitable[list[Event]]]


def _codes(**values: object) -> dict[str, str]:
    return {k: str(v) for k, v in values.items() if v is not None}


async def notes(q: TimelineQuery) -> list[Event]:
    """Notes per their visibility (row-level security) and competence; never their body."""
    if DataCategory.NOTES not in q.categories:
        return []
    rows = await PeopleStore(q.session, q.scope).notes(q.person_id, sorted(q.competences))
    return [
        Event(
            at=n.created_at,
            type="note",
            id=n.id,
            organisation_id=n.organisation_id,
            competence=n.competence,
            codes=_codes(visibility=n.visibility),
        )
        for n in (r.note for r in rows)
    ]


async def care_team(q: TimelineQuery) -> list[Event]:
    """Organisations joining and leaving the care team."""
    events = []
    for member in await PeopleStore(q.session, q.scope).team(q.person_id):
        m = member.membership
        events.append(
            Event(
                at=m.started_at,
                type="care_team.joined",
                id=m.id,
                organisation_id=m.organisation_id,
                competence=m.competence,
                codes=_codes(team_role=m.team_role, source=m.source),
            )
        )
        if m.ended_at is not None:
            events.append(
                Event(
                    at=m.ended_at,
                    type="care_team.left",
                    id=m.id,
                    organisation_id=m.organisation_id,
                    competence=m.competence,
                    codes=_codes(
                        end_reason=m.end_reason if m.end_reason in rules.CODED_END_REASONS else None
                    ),
                )
            )
    return events


async def consents(q: TimelineQuery) -> list[Event]:
    """Information notices and consents given and withdrawn."""
    events = []
    for c in await PeopleStore(q.session, q.scope).consents(q.person_id):
        codes = _codes(kind=c.kind, method=c.method, recipient_organisation_id=c.organisation_id)
        events.append(
            Event(
                at=c.created_at,
                type=f"{c.kind}.given",
                id=c.id,
                organisation_id=c.recorded_by_organisation_id,
                competence=c.competence,
                codes={**codes, "given_on": c.given_on.isoformat()},
            )
        )
        if c.withdrawn_on is not None:
            # a date: placed at its start in French time, never before the recording
            at = max(datetime.combine(c.withdrawn_on, time(), PARIS), c.created_at)
            events.append(
                Event(
                    at=at,
                    type=f"{c.kind}.withdrawn",
                    id=c.id,
                    organisation_id=c.recorded_by_organisation_id,
                    competence=c.competence,
                    codes={**codes, "withdrawn_on": c.withdrawn_on.isoformat()},
                )
            )
    return events


async def access_requests(q: TimelineQuery) -> list[Event]:
    """Requests for access to the person's care team, and their decisions."""
    events = []
    for r in await PeopleStore(q.session, q.scope).access_requests(q.person_id):
        events.append(
            Event(
                at=r.created_at,
                type="access_request.created",
                id=r.id,
                organisation_id=r.organisation_id,
                competence=r.competence,
                status="pending",
            )
        )
        if r.decided_at is not None:
            events.append(
                Event(
                    at=r.decided_at,
                    type="access_request.decided",
                    id=r.id,
                    organisation_id=r.decided_by_organisation_id,
                    competence=r.competence,
                    status=r.status,
                    codes=_codes(requester_organisation_id=r.organisation_id),
                )
            )
    return events


def _position(cursor: str | None) -> tuple[datetime, str, str] | None:
    position = decode_keyset(cursor, as_instant, as_text, as_text)
    return (position[0], position[1], position[2]) if position else None


async def timeline(
    ctx: People,
    person_id: uuid.UUID,
    *,
    sources: Sequence[Source],
    cursor: str | None,
    limit: int,
) -> Page[TimelineItem]:
    """One page of what happened to a person, from every source (``people.deps`` names them),
    filtered to what the caller may see."""
    before = _position(cursor)
    _, categories = await visible_person(ctx, person_id)
    sensitive = await ctx.orgs.sensitive_competences()
    query = TimelineQuery(
        session=ctx.store.session,
        scope=ctx.scope,
        person_id=person_id,
        categories=categories,
        competences=frozenset(await note_competences(ctx, person_id)),
        sensitive=sensitive,
    )
    events = [
        e
        for fn in sources
        for e in await fn(query)
        if rules.sensitive_shown(
            competence=e.competence,
            organisation_id=e.organisation_id,
            sensitive=sensitive,
            clearance=ctx.scope.has_sensitive_clearance,
            own_organisation=ctx.scope.organisation_id,
        )
    ]
    page, more = rules.timeline_page(events, before=before, limit=limit)
    await ctx.audit.record("timeline.read", "beneficiary", str(person_id), beneficiary_id=person_id)
    last = page[-1].key if page else None
    return Page[TimelineItem](
        items=[
            TimelineItem(
                at=e.at,
                type=e.type,
                id=e.id,
                organisation_id=e.organisation_id,
                competence=e.competence,
                status=e.status,
                codes=dict(e.codes or {}),
            )
            for e in page
        ],
        next_cursor=encode_cursor([last[0].isoformat(), last[1], last[2]])
        if more and last
        else None,
    )
