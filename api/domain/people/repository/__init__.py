"""Queries of the people noun, typed (rows are the table models, or small dataclasses for
what SQL functions answer). ``PeopleStore`` is what a person's use cases ask, composed of
one module per concern — ``records``, ``care_team``, ``household`` (and budget), ``notes``
(and consents), ``access_requests`` — all under the request's scope; ``retention`` holds
the purge's queries on an owner connection."""

from api.domain.people.repository.access_requests import AccessRequestStore
from api.domain.people.repository.people import PeopleStore
from api.domain.people.repository.records import PersonRecord, locate_person
from api.domain.people.repository.retention import RetentionStore

__all__ = ["AccessRequestStore", "PeopleStore", "PersonRecord", "RetentionStore", "locate_person"]
