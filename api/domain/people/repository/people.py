"""The scoped queries of a person's use cases, gathered in one store (one module per
concern) so that a use case asks one object."""

from __future__ import annotations

from api.domain.people.repository.access_requests import PersonAccessRequests
from api.domain.people.repository.care_team import CareTeamQueries
from api.domain.people.repository.household import HouseholdQueries
from api.domain.people.repository.notes import ConsentQueries, NoteQueries
from api.domain.people.repository.records import PersonRecords


class PeopleStore(
    PersonRecords,
    CareTeamQueries,
    HouseholdQueries,
    NoteQueries,
    ConsentQueries,
    PersonAccessRequests,
):
    """People, their care teams, households, budgets, notes, consents and access requests,
    read through the request's scope (attachment) with row-level security repeating the
    boundary; discovery goes through the preview functions only."""
