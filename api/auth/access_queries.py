"""The access rule's answers, read from its one source: the SQL functions of migration 0016
(``guichet_access``, ``person_previews``). Nothing here decides; it only asks."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import date
from typing import NamedTuple

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession


class AccessGrant(NamedTuple):
    """One active membership of the acting organisation on a person, as ``guichet_access``
    answers it."""

    beneficiary_id: uuid.UUID
    competence: str
    membership_source: str
    #: how the competence is held now (``law``, ``convention``), None when it no longer is
    holding: str | None
    convention_id: uuid.UUID | None
    categories: list[str]


class PersonPreview(NamedTuple):
    """A person the caller may discover, as ``person_previews`` answers it."""

    id: uuid.UUID
    birth_name: str
    usage_name: str | None
    first_names: str
    birth_date: date
    commune_code: str
    nir_match: bool


class AccessStore:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def grants(
        self, people: Iterable[uuid.UUID], role_categories: Sequence[str] | None
    ) -> list[AccessGrant]:
        """One row per active membership of the acting organisation on these people:
        competence, how it is held now, and the categories it grants (``None``: no role
        narrowing, the organisation's attachment alone)."""
        fn = func.guichet_access(
            list(people), list(role_categories) if role_categories is not None else None
        ).table_valued(
            "beneficiary_id",
            "competence",
            "membership_source",
            "holding",
            "convention_id",
            "categories",
        )
        return [AccessGrant(*r) for r in await self.session.execute(select(fn))]

    async def previews(
        self, nir_hash: str | None, birth_date: date | None, keys: Iterable[str]
    ) -> list[PersonPreview]:
        """People the caller may discover (domain.md §6): at most ten minimal previews."""
        fn = func.person_previews(nir_hash, birth_date, sorted(keys)).table_valued(
            "id",
            "birth_name",
            "usage_name",
            "first_names",
            "birth_date",
            "commune_code",
            "nir_match",
        )
        return [PersonPreview(*r) for r in await self.session.execute(select(fn))]
