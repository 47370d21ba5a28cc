"""The access rule's answers, read from its one source: the SQL functions of migration 0016
(``guichet_access``, ``person_previews``). Nothing here decides; it only asks."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

from sqlalchemy import Row, func, select
from sqlalchemy.ext.asyncio import AsyncSession

AnyRow = Row[tuple[Any, ...]]


class AccessStore:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def grants(
        self, people: Iterable[uuid.UUID], role_categories: Sequence[str] | None
    ) -> list[AnyRow]:
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
        return list((await self.session.execute(select(fn))).all())

    async def previews(
        self, nir_hash: str | None, birth_date: date | None, keys: Iterable[str]
    ) -> list[AnyRow]:
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
        return list((await self.session.execute(select(fn))).all())
