"""People: creation with identity matching, discovery by preview, reading and editing within
the caller's categories, care teams, households and budgets, notes. Every read and write of
personal data is audited in the same transaction.

One module per concern — ``context`` (the request's :class:`People` and the visible
record), ``discovery``, ``records``, ``care_team``, ``household`` (and budget), ``notes`` —
and here the use cases routers and the other nouns call."""

from api.domain.people.service.care_team import break_glass, care_team, leave, require_access_log
from api.domain.people.service.context import (
    People,
    etag,
    followed,
    touched_person,
    visible_person,
)
from api.domain.people.service.discovery import MAX_PREVIEWS, discoverable, preview_search
from api.domain.people.service.household import budget, household, replace_budget, replace_household
from api.domain.people.service.notes import add_note, note_competences, notes
from api.domain.people.service.records import attached, create, folded_names, read, shape, update

__all__ = [
    "MAX_PREVIEWS",
    "People",
    "add_note",
    "attached",
    "break_glass",
    "budget",
    "care_team",
    "create",
    "discoverable",
    "etag",
    "folded_names",
    "followed",
    "household",
    "leave",
    "note_competences",
    "notes",
    "preview_search",
    "read",
    "replace_budget",
    "replace_household",
    "require_access_log",
    "shape",
    "touched_person",
    "update",
    "visible_person",
]
